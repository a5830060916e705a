//! `posctl display` and `posctl ask`: the customer's side of the terminal (native protocol 1.1).

use std::time::Duration;

use posbridge::{Cart, CustomerPrompt, PaymentTerminal};
use posbridge_sim::money;
use posbridge_wire::{CartLine, CustomerQuestion, CustomerReply};
use serde::Serialize;

use crate::commands::{
    Common, Failure, close, connect_terminal, exit, parse_amount, parse_currency, payment_failure,
    usage,
};
use crate::home::Home;

/// `posctl display`.
#[derive(clap::Args, Debug)]
pub(crate) struct DisplayArgs {
    /// The cart's lines as `TEXT=AMOUNT`, with an optional count in front: `"2 x Cappuccino=7.00"`.
    #[arg(required = true)]
    lines: Vec<String>,
    /// A line under the total.
    #[arg(long)]
    message: Option<String>,
    /// The currency (ISO 4217 letters or number).
    #[arg(long, default_value = "EUR")]
    currency: String,
    #[command(flatten)]
    common: Common,
}

/// One cart line from the command line.
fn cart_line(text: &str, currency: posbridge_wire::Currency) -> Result<CartLine, Failure> {
    let (label, amount) = text
        .rsplit_once('=')
        .ok_or_else(|| usage(format!("{text:?}: give a line as TEXT=AMOUNT")))?;
    let (quantity, label) = match label.split_once(" x ") {
        Some((n, rest)) => match n.trim().parse::<u32>() {
            Ok(n) if n > 0 => (Some(n), rest),
            _ => (None, label),
        },
        None => (None, label),
    };
    let label = label.trim();
    if label.is_empty() || label.len() > 64 {
        return Err(usage(format!("{text:?}: the text is 1 to 64 bytes")));
    }
    Ok(CartLine {
        text: label.to_string(),
        quantity,
        amount: parse_amount(amount.trim(), currency)?,
    })
}

pub(crate) async fn display(args: DisplayArgs) -> Result<u8, Failure> {
    let currency = parse_currency(&args.currency)?;
    if args.lines.len() > usize::from(posbridge_wire::CART_LINES) {
        return Err(usage(format!(
            "at most {} lines fit on the customer display",
            posbridge_wire::CART_LINES
        )));
    }
    let lines = args
        .lines
        .iter()
        .map(|l| cart_line(l, currency))
        .collect::<Result<Vec<_>, _>>()?;
    let total = lines
        .iter()
        .try_fold(0u64, |sum, l| sum.checked_add(l.amount))
        .ok_or_else(|| usage("the total is too large"))?;
    let cart = Cart {
        lines,
        currency,
        total,
        message: args.message,
    };
    let home = Home::locate(args.common.home.as_deref())?;
    let terminal = connect_terminal(&home, &args.common).await?;
    let shown = terminal
        .show_cart(&cart, Duration::from_secs(20))
        .await
        .map_err(payment_failure);
    close(terminal).await;
    if !shown? {
        return Err(Failure(
            exit::FAILED,
            "this terminal has no customer display a till can drive (native protocol 1.1 has one)"
                .into(),
        ));
    }
    if args.common.json {
        crate::json::print(&Shown {
            shown: true,
            total: crate::json::Amount::new(total, currency),
        });
    } else {
        outln!(
            "shown on the customer display: total {}",
            money(total, currency)
        );
    }
    Ok(exit::OK)
}

#[derive(Serialize)]
struct Shown {
    shown: bool,
    total: crate::json::Amount,
}

/// `posctl ask`.
#[derive(clap::Args, Debug)]
pub(crate) struct AskArgs {
    #[command(subcommand)]
    question: Question,
    /// How long the customer has, in seconds (at most 300).
    #[arg(long, default_value_t = 60, global = true)]
    timeout: u64,
    #[command(flatten)]
    common: Common,
}

#[derive(clap::Subcommand, Debug)]
enum Question {
    /// A tip on an amount: one of the presets, none, or (with --custom) an amount typed.
    Tip {
        /// The amount the tip is on.
        on: String,
        /// The percentages offered (comma-separated, at most 6).
        #[arg(long, value_delimiter = ',', default_values_t = [10u16, 15, 20])]
        presets: Vec<u16>,
        /// Let the customer type an amount.
        #[arg(long)]
        custom: bool,
        /// The currency.
        #[arg(long, default_value = "EUR")]
        currency: String,
    },
    /// A yes/no question.
    YesNo {
        /// The question shown.
        prompt: String,
    },
    /// A whole number between --min and --max.
    Number {
        /// The question shown.
        prompt: String,
        /// The smallest accepted.
        #[arg(long, default_value_t = 0)]
        min: u64,
        /// The largest accepted.
        #[arg(long)]
        max: u64,
    },
    /// A signature on the screen, written as a PNG file only this user can read.
    Signature {
        /// Where to write the image.
        #[arg(long)]
        out: std::path::PathBuf,
    },
}

#[derive(Serialize)]
struct Answer {
    /// `tip`, `confirmed`, `number`, `signature`, `timed_out`, `cancelled`.
    reply: &'static str,
    tip: Option<crate::json::Amount>,
    confirmed: Option<bool>,
    number: Option<u64>,
    /// Where the signature image was written.
    signature_file: Option<String>,
}

pub(crate) async fn ask(args: AskArgs) -> Result<u8, Failure> {
    if !(1..=300).contains(&args.timeout) {
        return Err(usage("--timeout: 1 to 300 seconds"));
    }
    let mut tip_currency = None;
    let (prompt, question) = match &args.question {
        Question::Tip {
            on,
            presets,
            custom,
            currency,
        } => {
            let currency = parse_currency(currency)?;
            tip_currency = Some(currency);
            if presets.len() > usize::from(posbridge_wire::TIP_PRESETS)
                || presets.iter().any(|p| !(1..=100).contains(p))
            {
                return Err(usage("--presets: at most 6 percentages, each 1 to 100"));
            }
            (
                "Add a tip?".to_string(),
                CustomerQuestion::Tip {
                    base: parse_amount(on, currency)?,
                    currency,
                    presets: presets.clone(),
                    custom: *custom,
                },
            )
        }
        Question::YesNo { prompt } => (prompt.clone(), CustomerQuestion::YesNo),
        Question::Number { prompt, min, max } => {
            if min > max {
                return Err(usage("--min is above --max"));
            }
            (
                prompt.clone(),
                CustomerQuestion::Number {
                    min: *min,
                    max: *max,
                },
            )
        }
        Question::Signature { .. } => ("Please sign".to_string(), CustomerQuestion::Signature),
    };
    if prompt.is_empty() || prompt.len() > 64 {
        return Err(usage("the question is 1 to 64 bytes"));
    }
    let home = Home::locate(args.common.home.as_deref())?;
    let terminal = connect_terminal(&home, &args.common).await?;
    let reply = terminal
        .ask_customer(&CustomerPrompt {
            prompt,
            question,
            timeout: Duration::from_secs(args.timeout),
        })
        .await
        .map_err(payment_failure);
    close(terminal).await;
    let Some(reply) = reply? else {
        return Err(Failure(
            exit::FAILED,
            "this terminal cannot ask the customer (native protocol 1.1 can)".into(),
        ));
    };
    let mut answer = Answer {
        reply: "",
        tip: None,
        confirmed: None,
        number: None,
        signature_file: None,
    };
    let (text, code) = match reply {
        CustomerReply::Tip(v) => {
            let currency = tip_currency.unwrap_or(posbridge_wire::Currency::EUR);
            answer.reply = "tip";
            answer.tip = Some(crate::json::Amount::new(v, currency));
            (format!("tip: {}", money(v, currency)), exit::OK)
        }
        CustomerReply::Confirmed(yes) => {
            answer.reply = "confirmed";
            answer.confirmed = Some(yes);
            (if yes { "yes" } else { "no" }.to_string(), exit::OK)
        }
        CustomerReply::Number(n) => {
            answer.reply = "number";
            answer.number = Some(n);
            (n.to_string(), exit::OK)
        }
        CustomerReply::Signature(png) => {
            let Question::Signature { out } = &args.question else {
                return Err(Failure(
                    exit::FAILED,
                    "a signature that was not asked for".into(),
                ));
            };
            // A customer's signature is personal data: owner-only, like everything posctl writes.
            posbridge_crypto::owner_only::write(out, &png)
                .map_err(|e| Failure(exit::FAILED, format!("{}: {e}", out.display()).into()))?;
            answer.reply = "signature";
            answer.signature_file = Some(out.display().to_string());
            (
                format!("signed: {} bytes written to {}", png.len(), out.display()),
                exit::OK,
            )
        }
        CustomerReply::TimedOut => {
            answer.reply = "timed_out";
            ("no answer in time".to_string(), exit::DECLINED)
        }
        CustomerReply::Cancelled => {
            answer.reply = "cancelled";
            ("withdrawn".to_string(), exit::DECLINED)
        }
        other => (format!("{other:?}"), exit::FAILED),
    };
    if args.common.json {
        crate::json::print(&answer);
    } else {
        outln!("{text}");
    }
    Ok(code)
}
