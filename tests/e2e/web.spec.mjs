// End-to-end test of callqa's web UI in headless Chromium, one user flow:
// log in, search 退款 over real transcribed calls, open a call, play the audio and seek
// by clicking a transcript segment, open the QA report chart, blacklist a number, import
// consent records, edit a campaign's scorecard (a refused check, then a saved version) and
// switch the page language. A screenshot is saved after every step (and on failure).
//
// Driven by tests/tests/web_browser.rs, which ingests the sample calls and starts
// `callqa serve`. Environment:
//   BASE_URL   http://127.0.0.1:PORT of the running server
//   USER, PASSWORD   an admin login
//   ARTIFACTS  directory for screenshots and the browser log
//   CALL_IDS   JSON object: sample file name -> call id
//   CHROMIUM   browser binary (default /usr/bin/chromium)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (this script is run by tests/tests/web_browser.rs)`);
  return v;
}

const BASE = env('BASE_URL').replace(/\/$/, '');
const USER = env('USER');
const PASSWORD = env('PASSWORD');
const ARTIFACTS = env('ARTIFACTS');
const CALL_IDS = JSON.parse(env('CALL_IDS'));
const REFUND_CALL = CALL_IDS['zh_refund_complaint.wav'];
const OPT_OUT_CALL = CALL_IDS['zh_opt_out.wav'];
const NUMBER = '+8613900139000';
const REASON = 'e2e: customer asked not to be called';
const CONSENT_NUMBER = '+8613600136000';
// The campaign web_browser.rs ingests the sample calls under.
const CAMPAIGN = 'cards';

mkdirSync(ARTIFACTS, { recursive: true });

test('callqa web UI in headless Chromium', { timeout: 240_000 }, async (t) => {
  assert.ok(REFUND_CALL && OPT_OUT_CALL, `CALL_IDS lacks the sample calls: ${JSON.stringify(CALL_IDS)}`);
  const profile = mkdtempSync(join(tmpdir(), 'callqa-e2e-chromium-'));
  // A persistent context because Playwright refuses --user-data-dir in args; this is
  // a fresh profile directory all the same.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    viewport: { width: 1280, height: 900 },
    locale: 'en-US',
  });
  context.setDefaultTimeout(15_000);
  const page = context.pages()[0] ?? (await context.newPage());

  // Everything the browser says, for the artifacts; uncaught page errors fail the test.
  const log = [];
  const pageErrors = [];
  page.on('console', (m) => log.push(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => { pageErrors.push(String(e)); log.push(`pageerror: ${e}`); });
  const audioResponses = [];
  page.on('response', (r) => {
    if (/\/api\/calls\/[^/]+\/audio/.test(r.url())) {
      const h = r.headers();
      audioResponses.push({ status: r.status(), range: r.request().headers()['range'], contentRange: h['content-range'] });
    }
    if (r.status() >= 400) log.push(`HTTP ${r.status()} ${r.request().method()} ${r.url()}`);
  });

  let n = 0;
  let failed = false;
  // One step of the flow: runs it, then saves NN-name.png (NN-name-FAILED.png on error).
  async function step(name, fn) {
    n += 1;
    const shot = join(ARTIFACTS, `${String(n).padStart(2, '0')}-${name}`);
    await t.test(name, { skip: failed && 'an earlier step failed' }, async () => {
      const started = Date.now();
      try {
        await fn();
        await page.screenshot({ path: `${shot}.png`, fullPage: true });
        log.push(`step ${name}: ok in ${Date.now() - started} ms`);
      } catch (e) {
        failed = true;
        log.push(`step ${name}: FAILED at ${page.url()}: ${e && e.message}`);
        await page.screenshot({ path: `${shot}-FAILED.png`, fullPage: true }).catch(() => {});
        writeFileSync(`${shot}-FAILED.html`, await page.content().catch(() => ''));
        throw e;
      }
    });
  }

  try {
    await step('login-redirect', async () => {
      await page.goto(`${BASE}/search`);
      assert.match(new URL(page.url()).pathname, /^\/login$/, 'an anonymous visitor is sent to the login page');
      await page.locator('#name').waitFor();
    });

    await step('login-wrong-password', async () => {
      await page.fill('#name', USER);
      await page.fill('#password', `${PASSWORD}-wrong`);
      await page.click('form.login button[type=submit]');
      await page.locator('.alert.error').waitFor();
      assert.equal(new URL(page.url()).pathname, '/login');
    });

    await step('login', async () => {
      await page.fill('#name', USER);
      await page.fill('#password', PASSWORD);
      await Promise.all([page.waitForURL(/\/search/), page.click('form.login button[type=submit]')]);
      const who = await page.locator('.who .user').innerText();
      assert.ok(who.includes(USER), `logged-in user shown in the header: ${who}`);
    });

    await step('search-refund', async () => {
      await page.fill('input[name=q]', '退款');
      await Promise.all([page.waitForURL(/q=/), page.press('input[name=q]', 'Enter')]);
      await page.locator('article.hit').first().waitFor();
      const ids = await page.locator('article.hit a.callid').allInnerTexts();
      assert.ok(ids.length >= 1, 'at least one hit');
      assert.ok(ids.map((s) => s.trim()).includes(REFUND_CALL), `the refund call ${REFUND_CALL} is a hit: ${ids}`);
      assert.ok(!ids.map((s) => s.trim()).includes(OPT_OUT_CALL), `the opt-out call ${OPT_OUT_CALL} never says 退款: ${ids}`);
      const marked = await page.locator('article.hit .snip b, article.hit .snip mark').allInnerTexts();
      assert.ok(marked.some((s) => s.includes('退款')), `a snippet highlights 退款: ${JSON.stringify(marked)}`);
    });

    await step('open-call', async () => {
      await Promise.all([
        page.waitForURL(new RegExp(`/calls/${REFUND_CALL}`)),
        page.locator('article.hit a.callid', { hasText: REFUND_CALL }).click(),
      ]);
      await page.locator('audio#player').waitFor({ state: 'attached' });
      const segs = await page.locator('.transcript .seg').count();
      assert.ok(segs >= 2, `the transcript has both speakers' turns (${segs} segments)`);
      const marked = await page.locator('.transcript mark').allInnerTexts();
      assert.ok(marked.some((s) => s.includes('退款')), `the query word is marked in the transcript: ${marked}`);
    });

    await step('audio-loads', async () => {
      await page.waitForFunction(() => {
        const a = document.getElementById('player');
        return a && a.readyState >= 1 && Number.isFinite(a.duration) && a.duration > 0;
      }, null, { timeout: 15_000 });
      const media = await page.evaluate(() => {
        const a = document.getElementById('player');
        return { readyState: a.readyState, duration: a.duration, error: a.error && a.error.message };
      });
      assert.equal(media.error, null);
      assert.ok(media.duration > 3, `a call of several seconds: ${JSON.stringify(media)}`);
    });

    await step('audio-plays', async () => {
      await page.evaluate(() => {
        const a = document.getElementById('player');
        a.muted = true;
        return a.play();
      });
      await page.waitForFunction(() => document.getElementById('player').currentTime > 0.5, null, { timeout: 10_000 });
      const st = await page.evaluate(() => {
        const a = document.getElementById('player');
        a.pause();
        return { currentTime: a.currentTime, paused: a.paused };
      });
      assert.ok(st.currentTime > 0.5, `playback advanced: ${JSON.stringify(st)}`);
    });

    await step('seek-by-segment', async () => {
      const now = await page.evaluate(() => document.getElementById('player').currentTime);
      // The segment farthest from the current position, so the jump cannot be playback.
      const starts = await page.locator('.transcript .seg').evaluateAll((els) => els.map((e) => Number(e.dataset.start) / 1000));
      let idx = 0;
      starts.forEach((s, i) => { if (Math.abs(s - now) > Math.abs(starts[idx] - now)) idx = i; });
      const target = starts[idx];
      assert.ok(Math.abs(target - now) > 1, `a segment away from ${now}s to seek to: ${starts}`);
      await page.evaluate(() => {
        const a = document.getElementById('player');
        window.__seekedAt = null;
        a.addEventListener('seeked', () => { window.__seekedAt = a.currentTime; }, { once: true });
      });
      await page.locator('.transcript .seg').nth(idx).locator('p').click();
      await page.waitForFunction(() => window.__seekedAt !== null, null, { timeout: 10_000 });
      const seekedAt = await page.evaluate(() => window.__seekedAt);
      assert.ok(Math.abs(seekedAt - target) < 0.5, `seeked to ${seekedAt}s, segment starts at ${target}s`);
      // The click also starts playback from there and the segment lights up.
      await page.waitForFunction(() => document.getElementById('player').currentTime > window.__seekedAt + 0.2, null, { timeout: 10_000 });
      await page.locator('.transcript .seg.playing').first().waitFor();
      await page.evaluate(() => document.getElementById('player').pause());
      const partial = audioResponses.filter((r) => r.status === 206 && r.contentRange);
      assert.ok(partial.length >= 1, `the audio was served with Range (206): ${JSON.stringify(audioResponses)}`);
    });

    await step('seek-by-evidence', async () => {
      // A QA item's evidence links to its transcript span and plays from there too.
      const ev = page.locator('a.ev[data-start]').last();
      const target = Number(await ev.getAttribute('data-start')) / 1000;
      await page.evaluate((t) => {
        const a = document.getElementById('player');
        a.currentTime = t > 2 ? 0 : a.duration - 0.5;
        window.__seekedAt = null;
      }, target);
      await page.waitForFunction(() => !document.getElementById('player').seeking);
      await page.evaluate(() => {
        const a = document.getElementById('player');
        a.addEventListener('seeked', () => { window.__seekedAt = a.currentTime; }, { once: true });
      });
      await ev.click();
      await page.waitForFunction(() => window.__seekedAt !== null, null, { timeout: 10_000 });
      const seekedAt = await page.evaluate(() => window.__seekedAt);
      await page.evaluate(() => document.getElementById('player').pause());
      assert.ok(Math.abs(seekedAt - target) < 0.5, `evidence seeked to ${seekedAt}s, span starts at ${target}s`);
    });

    await step('qa-report', async () => {
      await Promise.all([page.waitForURL(/\/reports/), page.click('header.top nav a[href="/reports"]')]);
      const chart = page.locator('svg.chart');
      await chart.waitFor();
      const bars = await chart.locator('rect.bar').count();
      assert.ok(bars >= 1, `the chart has bars (${bars})`);
      const width = await chart.locator('rect.bar').first().getAttribute('width');
      assert.ok(Number(width) > 0, `a bar has a width: ${width}`);
      const box = await chart.boundingBox();
      assert.ok(box && box.width > 100 && box.height > 10, `the chart is drawn: ${JSON.stringify(box)}`);
      const rows = await page.locator('table tbody tr').allInnerTexts();
      assert.ok(rows.some((r) => r.includes('anna')), `the report lists the agent: ${rows}`);
      // The CSV export behind the download link, with the session cookie.
      const href = await page.locator('a[download][href*="format=csv"]').getAttribute('href');
      const csv = await page.request.get(new URL(href, page.url()).toString());
      assert.equal(csv.status(), 200, `CSV export ${href}`);
      const body = await csv.text();
      assert.match(body.split('\n')[0], /,/, `a CSV header line: ${body.slice(0, 200)}`);
      assert.ok(body.includes('anna'), `the CSV has the agent's row: ${body.slice(0, 300)}`);
    });

    await step('blacklist-add', async () => {
      await Promise.all([page.waitForURL(/\/blacklist/), page.click('header.top nav a[href="/blacklist"]')]);
      const form = page.locator('form[action="/blacklist/add"]');
      await form.locator('input[name=number]').fill(NUMBER);
      await form.locator('input[name=reason]').fill(REASON);
      await Promise.all([page.waitForURL(/msg=added/), form.locator('button[type=submit]').click()]);
      await page.locator('.alert.ok').waitFor();
      const row = page.locator('table tbody tr', { hasText: NUMBER });
      await row.waitFor();
      const text = await row.innerText();
      assert.ok(text.includes(REASON), `the row shows the reason: ${text}`);
    });

    await step('blacklist-listed', async () => {
      // The unfiltered list still holds the new number, marked as a manual entry.
      await Promise.all([page.waitForURL(/\/blacklist$/), page.click('header.top nav a[href="/blacklist"]')]);
      const row = page.locator('table tbody tr', { hasText: NUMBER });
      await row.waitFor();
      assert.match(await row.innerText(), /manual/);
    });

    await step('blacklist-remove', async () => {
      const row = page.locator('table tbody tr', { hasText: NUMBER });
      await row.locator('input[name=reason]').fill('e2e: cleanup');
      await Promise.all([page.waitForURL(/msg=removed/), row.locator('button[type=submit]').click()]);
      await page.locator('.alert.ok').waitFor();
      assert.equal(await page.locator('table tbody tr', { hasText: NUMBER }).count(), 0, 'the number is gone');
    });

    await step('consent-import', async () => {
      await Promise.all([page.waitForURL(/\/consents/), page.click('header.top nav a[href="/consents"]')]);
      await page.fill('#csvtext', [
        'number,scope,proof,granted_at',
        `${CONSENT_NUMBER},marketing,e2e-form,2026-01-05T08:00:00Z`,
        '+8613700137000,marketing,e2e-form,yesterday',
      ].join('\n'));
      await page.click('form.import button[type=submit]');
      const summary = page.locator('.import-summary');
      await summary.waitFor();
      assert.equal((await summary.locator('.imported').innerText()).trim(), '1');
      assert.equal((await summary.locator('.rejected').innerText()).trim(), '1');
      const rejected = await page.locator('table.rejected tbody tr').allInnerTexts();
      assert.equal(rejected.length, 1, `one rejected row: ${rejected}`);
      assert.match(rejected[0], /^3\s/, `the rejected row is line 3: ${rejected[0]}`);
      assert.match(rejected[0], /RFC 3339/, `with the reason: ${rejected[0]}`);
      assert.equal(await page.locator('table.consents tbody tr', { hasText: CONSENT_NUMBER }).count(), 1,
        'the imported record is listed');
    });

    await step('scorecard-check', async () => {
      await Promise.all([page.waitForURL(/\/scorecards$/), page.click('header.top nav a[href="/scorecards"]')]);
      await Promise.all([
        page.waitForURL(new RegExp(`/scorecards/${CAMPAIGN}$`)),
        page.locator(`table.campaign-cards a[href="/scorecards/${CAMPAIGN}"]`).click(),
      ]);
      const editor = page.locator('textarea[name=toml]');
      const text = await editor.inputValue();
      assert.match(text, /\[\[items\]\]/, 'the editor holds the TOML the campaign is scored with');
      const broken = text.replace('kind = "required_phrase"', 'kind = "shouting"');
      await editor.fill(broken);
      await page.click('button[value=check]');
      const problem = page.locator('.alert.problem');
      await problem.waitFor();
      const expected = broken.split('\n').findIndex((l) => l.includes('id = "greeting"')) + 1;
      assert.equal(Number(await problem.getAttribute('data-line')), expected, await problem.innerText());
      assert.match(await problem.innerText(), /shouting/);
      await page.locator('pre.excerpt .bad').waitFor();
      // The editor selects the line the parser refused.
      const selected = await page.evaluate(() => {
        const t = document.querySelector('textarea[name=toml]');
        return t.value.slice(t.selectionStart, t.selectionEnd);
      });
      assert.match(selected, /id = "greeting"/, `selected: ${JSON.stringify(selected)}`);
    });

    await step('scorecard-save', async () => {
      const editor = page.locator('textarea[name=toml]');
      const fixed = (await editor.inputValue())
        .replace('kind = "shouting"', 'kind = "required_phrase"')
        .replace('weight = 10', 'weight = 12');
      await editor.fill(fixed);
      await Promise.all([page.waitForURL(/msg=saved/), page.click('button[value=save]')]);
      await page.locator('.alert.ok').waitFor();
      // The default card (v1) scored the calls, so the campaign's own card is v2.
      assert.match(await page.locator('dd.version').innerText(), /^v2\b/);
      const saved = await page.locator('textarea[name=toml]').inputValue();
      assert.match(saved, /weight = 12/);
      assert.match(saved, /^version = 2$/m);
      const versions = await page.locator('ul.versions li').allInnerTexts();
      assert.ok(versions.some((v) => /v2 · in use/.test(v)), `v2 is in use: ${versions}`);
    });

    await step('language-toggle', async () => {
      const before = await page.locator('html').getAttribute('lang');
      const navBefore = await page.locator('header.top nav a[href="/search"]').innerText();
      await Promise.all([page.waitForURL(/lang=/), page.click('header.top a.lang')]);
      const after = await page.locator('html').getAttribute('lang');
      const navAfter = await page.locator('header.top nav a[href="/search"]').innerText();
      assert.notEqual(after, before, 'the page language changed');
      assert.deepEqual(new Set([before, after]), new Set(['en', 'zh']));
      assert.equal(navAfter, after === 'zh' ? '搜索' : 'Search');
      assert.notEqual(navAfter, navBefore);
      // The choice sticks (cookie) on the next page without ?lang=.
      await page.click('header.top nav a[href="/reports"]');
      await page.waitForURL(/\/reports/);
      assert.equal(await page.locator('html').getAttribute('lang'), after, 'the language is remembered');
    });

    await step('language-toggle-back', async () => {
      const before = await page.locator('html').getAttribute('lang');
      await Promise.all([page.waitForURL(/lang=/), page.click('header.top a.lang')]);
      const after = await page.locator('html').getAttribute('lang');
      assert.notEqual(after, before);
    });

    await t.test('no uncaught page errors', () => {
      assert.deepEqual(pageErrors, []);
    });
  } finally {
    writeFileSync(join(ARTIFACTS, 'browser.log'), `${log.join('\n')}\n`);
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
});
