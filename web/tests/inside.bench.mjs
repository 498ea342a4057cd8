// bench/inside.sh's browser half (here for web/node_modules): signs in, opens container CONTAINER_ID's
// page, lets its log follow run FOLLOW_S seconds, and prints the lines the
// page counted and the longest main-thread task (PerformanceObserver).
import { chromium } from 'playwright-core';

const { GF_URL, ADMIN_PASSWORD, CONTAINER_ID, FOLLOW_S } = process.env;
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu'] });
const page = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
await page.goto(GF_URL + '/');
await page.fill('input[name=username]', 'admin');
await page.fill('input[name=password]', ADMIN_PASSWORD);
await page.click('button[type=submit]');
await page.waitForSelector('nav');
await page.goto(`${GF_URL}/containers/${CONTAINER_ID}`);
await page.waitForSelector('[data-testid=log-view][data-lines]', { timeout: 15000 });
await page.evaluate(() => {
  window.__longest = 0;
  new PerformanceObserver((l) => l.getEntries().forEach((e) => (window.__longest = Math.max(window.__longest, e.duration)))).observe({ type: 'longtask' });
});
const start = await page.$eval('[data-testid=log-view]', (v) => parseInt(v.dataset.lines, 10));
await page.waitForTimeout(Number(FOLLOW_S) * 1000);
const r = await page.evaluate(() => {
  const v = document.querySelector('[data-testid=log-view]');
  return { lines: parseInt(v.dataset.lines, 10), in_view: parseInt(v.dataset.inView, 10), longest_task_ms: Math.round(window.__longest) };
});
r.lines -= start;
console.log(JSON.stringify(r));
await browser.close();
