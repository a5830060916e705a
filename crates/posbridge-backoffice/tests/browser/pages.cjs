// The back office's pages in a real browser: Debian's chromium, headless, driven by
// playwright-core. Run by tests/reports.rs against its seeded chain:
//   node pages.cjs URL TOKEN SCREENSHOT_DIR
// Prints one line per check; exits 1 at the first that fails.
'use strict';
const { chromium } = require('playwright-core');
const path = require('path');

const [url, token, shots] = process.argv.slice(2);

function check(ok, what) {
  if (!ok) {
    throw new Error('failed: ' + what);
  }
  console.log('ok: ' + what);
}

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu'],
  });
  try {
    const context = await browser.newContext({
      httpCredentials: { username: 'head office', password: token },
      viewport: { width: 1000, height: 700 },
    });
    const page = await context.newPage();
    const response = await page.goto(url + '/?day=2025-11-24');
    check(response.status() === 200, 'the chain page loads with the token as the password');

    const north = page.locator('tr[data-store="north"]');
    const south = page.locator('tr[data-store="south"]');
    check((await north.innerText()).includes('270.00 EUR'), 'north: 20 sales of 13.50 EUR');
    check((await south.innerText()).includes('94.50 EUR'), 'south: 7 sales of 13.50 EUR');
    check((await north.getAttribute('class')) === 'ok', 'north is not flagged');
    check((await south.getAttribute('class')) === 'mismatch', 'south is flagged');
    const red = await south.evaluate((row) => getComputedStyle(row).backgroundColor);
    check(red === 'rgb(255, 221, 221)', 'the flag shows: ' + red);

    const bar = page.locator('rect[data-hour="16"]');
    check((await bar.getAttribute('data-sales')) === '27', 'the 16:00 bar counts 27 sales');
    const box = await bar.boundingBox();
    check(box !== null && box.height > 100, 'the 16:00 bar is drawn (' + (box && box.height) + ' px)');
    await page.screenshot({ path: path.join(shots, 'chain.png'), fullPage: true });

    await page.click('tr[data-store="south"] a');
    await page.waitForSelector('#settlements');
    const flagged = await page.locator('#settlements tr.mismatch').count();
    check(flagged === 2, 'the store page flags both settlements that do not match (' + flagged + ')');
    check((await page.locator('#tills tr.mismatch').count()) === 1, 'and the till with a payment in doubt');
    await page.screenshot({ path: path.join(shots, 'store.png'), fullPage: true });
  } finally {
    await browser.close();
  }
})().catch((e) => {
  console.error(e.message || e);
  process.exit(1);
});
