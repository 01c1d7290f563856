/**
 * Shared setup of the browser tests: Debian's Chromium driven by playwright-core (no bundled
 * browsers), and the check that the explorer's bundle of src/core is present and current.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { REPO_ROOT } from './vectors.js';

export const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** The `skip` option of a browser suite: a reason when Chromium is not installed, else false. */
export const skipWithoutChromium: string | false = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium): skipping the browser test`;

/** Starts headless Chromium. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/** The explorer's web root and the bundle of src/core inside it. */
export const WEB_ROOT = join(REPO_ROOT, 'web');
export const CORE_BUNDLE = join(WEB_ROOT, 'dist', 'custos-core.js');

/**
 * The text of web/dist/custos-core.js, after checking that it is exactly what scripts/build-web.mjs
 * builds from src/core now: a missing or stale bundle fails the test ("run npm run build").
 */
export function currentCoreBundle(): string {
  const r = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts', 'build-web.mjs'), '--check'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`the explorer's bundle of src/core is not current: ${(r.stderr || r.stdout).trim()}`);
  return readFileSync(CORE_BUNDLE, 'utf8');
}
