// The pages that show a real engine's work, in a real browser against a
// real server whose agent drives a real dockerd. CHECK says which:
//   images (tests/integration/test_images_docker.sh): pull IMAGE (the
//     test's registry has it, the engine not) with its progress shown
//     until done, the image listed, then removed;
//   held (test_containers_docker.sh): the fleet overview and a GPU's page
//     say which container holds each GPU, as the ledger (/api/v1/gpus)
//     does; the holder's page charts its usage.
//   cleanup (test_cleanup.sh): the Images page's cleanup of SERVER_NAME
//     shows a plan naming JUNK, and removing it says what was freed;
//   build (test_images_build.sh): the Images page builds TAG from GIT on
//     SERVER_NAME (the job's row and its log), lists the registries'
//     credentials without a password;
//   inside (test_ctr_streams.sh): container CONTAINER_ID's page follows
//     its logs live (stderr told apart), offers the download, and opens a
//     terminal in which a typed command runs (first byte timed).
// All pass GF_URL, ADMIN_PASSWORD, SERVER_NAME and ARTIFACTS (screenshots).
import { mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';

const env = (k) => {
  if (!process.env[k]) throw new Error(`${k} is not set`);
  return process.env[k];
};
const [URL0, PASSWORD, SERVER, ART, CHECK] = ['GF_URL', 'ADMIN_PASSWORD', 'SERVER_NAME', 'ARTIFACTS', 'CHECK'].map(env);
mkdirSync(ART, { recursive: true });

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
});
const page = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
const errors = [];
page.on('pageerror', (e) => errors.push(e.message));
page.on('dialog', (d) => d.accept());

async function images() {
  const IMAGE = env('IMAGE');
  await page.click('nav >> text=Images');
  await page.waitForSelector('table[aria-label=images]');
  const host = await page.$eval('select[name=server]', (s) => s.value);
  if (host !== SERVER) throw new Error(`host picked: ${host}`);
  await page.fill('form[aria-label="Pull an image"] input[name=image]', IMAGE);
  await page.click('form[aria-label="Pull an image"] button[type=submit]');
  // the pull's row (the newest, first) appears with a progress bar, then says done
  const first = 'table[aria-label=pulls] tbody tr[data-pull]:first-child';
  await page.waitForSelector(`${first}[data-pull="${IMAGE}"] progress`, { timeout: 10000 });
  await page.waitForSelector(`${first}[data-state=done]`, { timeout: 60000 });
  const pct = await page.$eval(`${first} progress`, (p) => p.value);
  if (pct !== 100) throw new Error(`progress at the end: ${pct}`);
  await page.click(`${first} button:has-text("layers")`);
  await page.waitForSelector(`table[aria-label="layers of ${IMAGE}"] tr:has-text("Pull complete")`);
  // the list reloads when the pull ends
  await page.waitForSelector(`tr[data-image="${IMAGE}"]`, { timeout: 10000 });
  await page.screenshot({ path: `${ART}/images-pulled.png`, fullPage: true });
  console.log('ok: UI: pulled with a progress bar to 100%, layers shown, the image listed');
  await page.click(`tr[data-image="${IMAGE}"] button:has-text("Remove")`);
  await page.waitForSelector(`tr[data-image="${IMAGE}"]`, { state: 'detached', timeout: 10000 });
  console.log('ok: UI: removed, gone from the list');
}

/** Every held GPU of the ledger is on its host's card, and on its page. */
async function held() {
  await page.waitForSelector('[data-testid=hosts] [data-host]');
  const ledger = await page.evaluate(async () => (await fetch('/api/v1/gpus')).json());
  const mine = ledger.gpus.filter((g) => g.server === SERVER && g.holder);
  if (!mine.length) throw new Error('no GPU held on ' + SERVER);
  await page.waitForSelector(`[aria-label="GPUs held on ${SERVER}"]`);
  const text = await page.textContent(`[aria-label="GPUs held on ${SERVER}"]`);
  for (const g of mine) {
    const want = `GPU ${g.index}: ${g.holder.name} (${g.holder.owner})`;
    if (!text.includes(want)) throw new Error(`the card says "${text}", not "${want}"`);
  }
  const free = ledger.gpus.filter((g) => g.server === SERVER && !g.holder);
  for (const g of free) if (text.includes(`GPU ${g.index}:`)) throw new Error(`free GPU ${g.index} shown as held: ${text}`);
  await page.screenshot({ path: `${ART}/overview-held.png`, fullPage: true });
  const g = mine[0];
  await page.goto(`${URL0}/hosts/${encodeURIComponent(SERVER)}/gpus/${encodeURIComponent(g.uuid)}`);
  await page.waitForSelector(`[data-testid=gpu-holder]:has-text("${g.holder.name} (${g.holder.owner})")`);
  console.log(`ok: UI: the overview names the holder of each of ${mine.length} held GPUs and none of ${free.length} free; the GPU page too`);
  // the holder's own page: its limits, and charts of the agent's series
  // once a scrape has stored them
  let points = 0;
  for (let i = 0; i < 20 && points < 2; i++) {
    if (i) await new Promise((r) => setTimeout(r, 2000));
    await page.goto(`${URL0}/containers/${g.holder.container_id}?range=15m`);
    await page.waitForSelector('[data-testid=ctr-state]');
    await page.waitForFunction(() => document.querySelector('[data-testid=chart-info]')?.dataset.info);
    points = parseInt(await page.getAttribute('[data-testid=chart-info]', 'data-info'), 10) || 0;
  }
  if (points < 2) throw new Error(`${points} points on the container page after 40 s`);
  const charts = await page.$$eval('.charts .chart', (l) => l.length);
  if (charts !== 4) throw new Error(`${charts} charts on the container page`);
  await page.screenshot({ path: `${ART}/container-page.png`, fullPage: true });
  console.log(`ok: UI: container ${g.holder.name}'s page charts its CPU, memory, GPU memory and GPU utilization (${points} points)`);
}

/** The Images page's build form and registries. */
async function build() {
  const [TAG, GIT, REG] = ['TAG', 'GIT', 'REGISTRY'].map(env);
  await page.click('nav >> text=Images');
  await page.waitForSelector('table[aria-label=images]');
  await page.selectOption('select[name=server]', SERVER);
  await page.waitForSelector(`table[aria-label="registry credentials"] tr[data-registry="${REG}"]`);
  const regText = await page.textContent('section[aria-label=registries]');
  if (regText.includes('reg-pass-42')) throw new Error('the registry password is shown');
  await page.fill('form[aria-label="Build an image"] input[name=tag]', TAG);
  await page.fill('form[aria-label="Build an image"] input[name=git]', GIT);
  await page.click('form[aria-label="Build an image"] button[type=submit]');
  const row = `table[aria-label=pulls] tr[data-kind=build][data-pull="${TAG}"]`;
  await page.waitForSelector(`${row}[data-state=done]`, { timeout: 60000 });
  const commit = env('COMMIT');
  await page.waitForSelector(`${row} td:has-text("git ${commit.slice(0, 12)}")`);
  await page.click(`${row} button:has-text("log")`);
  await page.waitForSelector(`pre[aria-label="log of ${TAG}"]:has-text("COPY")`);
  await page.waitForSelector(`pre[aria-label="log of ${TAG}"]:has-text("git: at commit ${commit}")`);
  // the log came over the WebSocket the host pushes it on, to its end
  await page.waitForSelector('p[data-log-state="the build ended"]');
  await page.screenshot({ path: `${ART}/images-build.png`, fullPage: true });
  console.log(`ok: UI: built ${TAG} from ${GIT} (commit ${commit.slice(0, 12)} shown), its log pushed over a WebSocket to "the build ended"; the registry listed without its password`);
}

/** The Images page's cleanup panel. */
async function cleanup() {
  const JUNK = env('JUNK');
  await page.click('nav >> text=Images');
  await page.waitForSelector('table[aria-label=images]');
  await page.selectOption('select[name=server]', SERVER);
  await page.click('section[aria-label=cleanup] button:has-text("Show what would go")');
  await page.waitForSelector(`table[aria-label="cleanup plan"] tr[data-item="${JUNK}"]`, { timeout: 10000 });
  await page.screenshot({ path: `${ART}/cleanup-plan.png`, fullPage: true });
  await page.click('section[aria-label=cleanup] button:has-text("Remove these")');
  await page.waitForSelector('[data-testid=cleanup-result]', { timeout: 20000 });
  const said = await page.textContent('[data-testid=cleanup-result]');
  if (!/Removed [1-9]/.test(said)) throw new Error(`cleanup said: ${said}`);
  console.log(`ok: UI: cleanup plan listed ${JUNK}; removing it: "${said.trim()}"`);
}

/** The container page's logs and terminal. */
async function inside() {
  const id = env('CONTAINER_ID');
  await page.waitForSelector('nav');
  await page.goto(`${URL0}/containers/${id}`);
  // lines stream in; stderr's are marked
  await page.waitForSelector('[data-testid=log-view] .log-err', { timeout: 10000 });
  await page.waitForFunction(() => {
    const v = document.querySelector('[data-testid=log-view]');
    return v && [...v.querySelectorAll('.log-out')].some((d) => d.textContent.includes('tick-'));
  }, null, { timeout: 10000 });
  const before = await page.$eval('[data-testid=log-view]', (v) => parseInt(v.dataset.lines, 10));
  await page.waitForFunction((n) => parseInt(document.querySelector('[data-testid=log-view]').dataset.lines, 10) > n + 5, before, { timeout: 10000 });
  await page.selectOption('select[aria-label=streams]', 'stderr');
  const visible = await page.$$eval('[data-testid=log-view] span', (l) =>
    l.filter((d) => d.getClientRects().length > 0).map((d) => d.textContent).join('').split('\n').filter((x) => x));
  if (!visible.length || visible.some((l) => l !== 'err-1')) throw new Error(`stderr alone shows: ${visible.slice(0, 5).join('|')}`);
  await page.selectOption('select[aria-label=streams]', 'both');
  const href = await page.getAttribute('a:has-text("Download")', 'href');
  const text = await page.evaluate(async (h) => (await fetch(h)).text(), href);
  if (!text.includes('err-1\n') || !text.includes('out-1\n')) throw new Error(`download: ${text.slice(0, 200)}`);
  console.log(`ok: UI: logs followed live (${before}+ lines, stderr marked and filterable), download has both streams`);
  // the terminal: open, type, see the answer
  await page.click('button:has-text("Open terminal")');
  await page.waitForSelector('[data-testid=term][data-first-byte-ms]', { timeout: 10000 });
  const first = parseInt(await page.getAttribute('[data-testid=term]', 'data-first-byte-ms'), 10);
  await page.keyboard.type('echo ui-$((6*7))-ok\n');
  await page.waitForFunction(() => {
    const t = document.querySelector('[data-testid=term]').__term;
    const b = t.buffer.active;
    for (let i = 0; i < b.length; i++) if (b.getLine(i)?.translateToString().includes('ui-42-ok')) return true;
    return false;
  }, null, { timeout: 10000 });
  await page.screenshot({ path: `${ART}/container-inside.png`, fullPage: true });
  await page.keyboard.type('exit\n');
  await page.waitForFunction(() => document.querySelector('[data-testid=term-state]').textContent.startsWith('ended'), null, { timeout: 10000 });
  console.log(`ok: UI: terminal opened (first byte ${first} ms after the click), a typed command ran, exit ended it`);
  // the files: upload into the workspace (progress shown), listed, downloaded back
  await page.waitForSelector('table[aria-label="files in /workspace"]');
  // two files picked at once: both go up, one after the other
  await page.setInputFiles('section[aria-label=files] input[type=file]', [
    { name: 'ui-note.txt', mimeType: 'text/plain', buffer: Buffer.from('from the browser\n') },
    { name: 'ui-second.txt', mimeType: 'text/plain', buffer: Buffer.from('second\n') },
  ]);
  await page.waitForSelector('tr[data-file="ui-note.txt"]', { timeout: 10000 });
  await page.waitForSelector('tr[data-file="ui-second.txt"]', { timeout: 10000 });
  const noteHref = await page.getAttribute('tr[data-file="ui-note.txt"] a', 'href');
  const back = await page.evaluate(async (h) => (await fetch(h)).text(), noteHref);
  if (back !== 'from the browser\n') throw new Error(`downloaded back: ${back}`);
  await page.click('tr[data-file="ui-note.txt"] button:has-text("Delete")');
  await page.waitForSelector('tr[data-file="ui-note.txt"]', { state: 'detached', timeout: 10000 });
  await page.screenshot({ path: `${ART}/container-files.png`, fullPage: true });
  console.log('ok: UI: two files picked at once uploaded into /workspace, listed, one downloaded back the same and deleted');
}

let rc = 0;
try {
  await page.goto(URL0 + '/');
  await page.fill('input[name=username]', 'admin');
  await page.fill('input[name=password]', PASSWORD);
  await page.click('button[type=submit]');
  await ({ images, held, inside, cleanup, build }[CHECK])();
  if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);
} catch (e) {
  rc = 1;
  console.log(`FAIL: ${e.stack || e}`);
  await page.screenshot({ path: `${ART}/FAIL-images.png`, fullPage: true }).catch(() => {});
}
await browser.close();
process.exit(rc);
