// Adyen's own Terminal API client (`@adyen/api-library`, an interop peer) against
// posbridge-sim --protocol nexo over HTTPS: payment, transaction status, refund, reversal, and
// an abort of a running payment. Prints one JSON object with what each step answered.
//
// Usage: node terminal_api.js PORT CA_PEM_PATH POIID PASSPHRASE
"use strict";
const { Client, Config, TerminalLocalAPI } = require("@adyen/api-library");

const [port, caPath, poiId, passphrase] = process.argv.slice(2);
const config = new Config({
  environment: "TEST",
  apiKey: "local-integration",
  terminalApiLocalEndpoint: "https://127.0.0.1",
  certificatePath: caPath,
});
const client = new Client(config);
const api = new TerminalLocalAPI(client);
// The library posts to port 8443; the test terminal listens where the test put it.
api.localRequest.endpoint = `https://127.0.0.1:${port}/nexo/`;
const key = { KeyIdentifier: "adyen-interop", KeyVersion: 1, AdyenCryptoVersion: 1, Passphrase: passphrase };

let serial = 0;
function header(category) {
  serial += 1;
  return {
    ProtocolVersion: "3.0",
    MessageClass: "Service",
    MessageCategory: category,
    MessageType: "Request",
    ServiceID: `adyen${String(serial).padStart(4, "0")}`,
    SaleID: "adyen-node",
    POIID: poiId,
  };
}

function saleData(id) {
  return { SaleTransactionID: { TransactionID: id, TimeStamp: new Date().toISOString() } };
}

function payment(amount, type) {
  const h = header("Payment");
  const request = {
    SaleToPOIRequest: {
      MessageHeader: h,
      PaymentRequest: {
        SaleData: saleData(`tx-${h.ServiceID}`),
        PaymentTransaction: { AmountsReq: { Currency: "EUR", RequestedAmount: amount } },
        PaymentData: { PaymentType: type },
      },
    },
  };
  return { h, call: api.request(request, key) };
}

function result(response, body) {
  const r = response.SaleToPOIResponse || {};
  const b = r[body] || {};
  return {
    header: r.MessageHeader,
    result: b.Response && b.Response.Result,
    condition: b.Response && b.Response.ErrorCondition,
    poi: b.POIData && b.POIData.POITransactionID,
    amount: b.PaymentResult && b.PaymentResult.AmountsResp && b.PaymentResult.AmountsResp.AuthorizedAmount,
    body: b,
  };
}

(async () => {
  const out = {};
  const sale = payment(12.5, "Normal");
  out.sale = result(await sale.call, "PaymentResponse");

  const status = await api.request({
    SaleToPOIRequest: {
      MessageHeader: header("TransactionStatus"),
      TransactionStatusRequest: {
        MessageReference: { MessageCategory: "Payment", ServiceID: sale.h.ServiceID, SaleID: "adyen-node" },
      },
    },
  }, key);
  const s = status.SaleToPOIResponse.TransactionStatusResponse;
  const repeated = s.RepeatedMessageResponse;
  out.status = {
    result: s.Response.Result,
    repeatedServiceID: repeated && repeated.MessageHeader.ServiceID,
    repeatedResult: repeated && repeated.RepeatedResponseMessageBody.PaymentResponse.Response.Result,
    repeatedPoi: repeated && repeated.RepeatedResponseMessageBody.PaymentResponse.POIData.POITransactionID,
  };

  const refund = payment(2.0, "Refund");
  out.refund = result(await refund.call, "PaymentResponse");

  const reversal = await api.request({
    SaleToPOIRequest: {
      MessageHeader: header("Reversal"),
      ReversalRequest: {
        OriginalPOITransaction: { POITransactionID: out.sale.poi },
        ReversalReason: "MerchantCancel",
      },
    },
  }, key);
  out.reversal = result(reversal, "ReversalResponse");

  // An abort while a payment runs (the test terminal takes its time over this one).
  const slow = payment(30.0, "Normal");
  await new Promise((resolve) => setTimeout(resolve, 300));
  const abort = await api.request({
    SaleToPOIRequest: {
      MessageHeader: header("Abort"),
      AbortRequest: {
        AbortReason: "MerchantAbort",
        MessageReference: { MessageCategory: "Payment", ServiceID: slow.h.ServiceID, SaleID: "adyen-node", POIID: poiId },
      },
    },
  }, key);
  out.abort = { answered: JSON.stringify(abort) };
  out.aborted = result(await slow.call, "PaymentResponse");

  const unknown = await api.request({
    SaleToPOIRequest: {
      MessageHeader: header("TransactionStatus"),
      TransactionStatusRequest: {
        MessageReference: { MessageCategory: "Payment", ServiceID: "never0000", SaleID: "adyen-node" },
      },
    },
  }, key);
  out.unknown = unknown.SaleToPOIResponse.TransactionStatusResponse.Response;
  process.stdout.write(JSON.stringify(out));
})().catch((e) => {
  process.stderr.write(`adyen client failed: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
