// The apps page in a real browser (Debian's chromium through playwright-core)
// against a real server with a Docker host and a git server. Driven by
// tests/integration/test_apps.sh, which passes GF_URL, GF_USER and
// GF_PASSWORD (a user), BIG_REPO (a repository big enough that its clone
// takes a while), ARTIFACTS (screenshots go there).
import { mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';

const env = (k) => {
  if (!process.env[k]) throw new Error(`${k} is not set`);
  return process.env[k];
};
const URL0 = env('GF_URL');
const ART = env('ARTIFACTS');
mkdirSync(ART, { recursive: true });

let failures = 0;
let page = null;
async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    console.log(`ok: ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failures++;
    console.log(`FAIL: ${name}: ${e.stack || e}`);
    await page?.screenshot({ path: `${ART}/FAIL-apps-${name.replace(/[^a-z0-9]+/gi, '-').slice(0, 50)}.png`, fullPage: true }).catch(() => {});
  }
}
function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
});
const ctx = await browser.newContext({ viewport: { width: 1400, height: 900 } });
page = await ctx.newPage();
const errors = [];
page.on('pageerror', (e) => errors.push(e.message));

await step('sign in and open the apps page', async () => {
  await page.goto(URL0 + '/');
  await page.fill('input[name=username]', env('GF_USER'));
  await page.fill('input[name=password]', env('GF_PASSWORD'));
  await page.click('button[type=submit]');
  await page.click('nav >> text=Apps');
  await page.waitForSelector('table[aria-label=apps]');
});

await step('the marketplace shows the seeded templates; a template prefills the install dialog with its variables', async () => {
  await page.click('[role=tab] >> text=Marketplace');
  for (const slug of ['stable-diffusion-webui', 'comfyui', 'jupyterlab', 'text-generation-webui', 'vllm', 'ollama'])
    await page.waitForSelector(`[data-template="${slug}"]`, { timeout: 5000 });
  await page.screenshot({ path: `${ART}/apps-marketplace.png`, fullPage: true });
  await page.click('[data-template=comfyui] button:has-text("Install")');
  const form = page.locator('form.install');
  assert(await form.locator('input[name=repository]').inputValue() === 'https://github.com/comfyanonymous/ComfyUI', 'the repository is not prefilled');
  assert(await form.locator('input[name=port]').inputValue() === '8188', 'the port is not prefilled');
  await page.click('[data-template=jupyterlab] button:has-text("Install")');
  assert(await page.locator('form.install [data-var=JUPYTER_TOKEN] input').getAttribute('required') !== null, 'the required variable is not marked');
  await page.click('button:has-text("Install app")'); // closes it
  await page.click('[role=tab] >> text=Apps');
});

await step('install from git: the clone\'s progress shows live, then the light walks from amber to green', async () => {
  await page.click('button:has-text("Install app")');
  const form = page.locator('form.install');
  await form.locator('input[name=name]').fill('ui-web');
  await form.locator('input[name=repository]').fill(env('BIG_REPO'));
  await form.locator('input[name=start_command]').fill("trap 'exit 0' TERM; httpd -f -p 8080 -h /app/www & wait");
  await form.locator('input[name=port]').fill('8080');
  await form.locator('input[name=health_path]').fill('/index.html');
  await form.locator('input[name=image]').fill('gf-busybox:1');
  await form.locator('select[name=host]').selectOption('dk');
  // what the page shows as it changes, kept by the page itself
  await page.evaluate(() => {
    window.__seen = { progress: [], lights: [] };
    new MutationObserver(() => {
      const p = document.querySelector('[data-app=ui-web] [data-testid=progress]');
      if (p && window.__seen.progress.at(-1) !== p.textContent) window.__seen.progress.push(p.textContent);
      const l = document.querySelector('[data-app=ui-web] .light');
      if (l) {
        const h = `${l.dataset.health} ${getComputedStyle(l).color}`;
        if (window.__seen.lights.at(-1) !== h) window.__seen.lights.push(h);
      }
    }).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
  });
  const t0 = Date.now();
  await form.locator('button[type=submit]').click();
  await page.waitForSelector('[data-app=ui-web] .light[data-health=RUNNING]', { timeout: 60000 });
  const seen = await page.evaluate(() => window.__seen);
  console.log(`   RUNNING ${Date.now() - t0} ms after Install; progress seen: ${JSON.stringify(seen.progress.slice(0, 4))}; lights: ${JSON.stringify(seen.lights)}`);
  assert(seen.progress.some((t) => /cloning: \d+ of \d+ objects/.test(t)), 'no clone progress was shown');
  const starting = seen.lights.find((l) => l.startsWith('STARTING')), running = seen.lights.find((l) => l.startsWith('RUNNING'));
  assert(starting && running && seen.lights.indexOf(starting) < seen.lights.indexOf(running), `the light did not go STARTING -> RUNNING: ${seen.lights}`);
  assert(starting.slice(9) !== running.slice(9), `amber and green are the same colour: ${seen.lights}`);
  const href = await page.locator('[data-app=ui-web] [data-testid=app-link]').getAttribute('href');
  const body = await (await fetch(href)).text();
  assert(body.includes('big one'), `the app's link ${href} does not answer with its page`);
  await page.screenshot({ path: `${ART}/apps-running.png`, fullPage: true });
});

await step('stop turns the light grey, live', async () => {
  page.once('dialog', (d) => d.accept());
  await page.click('[data-app=ui-web] button:has-text("Stop")');
  await page.waitForSelector('[data-app=ui-web] .light[data-health=STOPPED]', { timeout: 20000 });
  const lights = await page.evaluate(() => window.__seen.lights);
  assert(lights.at(-1).startsWith('STOPPED') && lights.at(-1).slice(8) !== lights.find((l) => l.startsWith('RUNNING')).slice(8),
    `stopped is not its own colour: ${lights}`);
});

await step('no errors in the page', async () => {
  assert(errors.length === 0, errors.join('\n'));
});

await browser.close();
if (failures) {
  console.log(`${failures} apps UI step(s) failed`);
  process.exit(1);
}
