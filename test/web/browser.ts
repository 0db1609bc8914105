import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { repoRoot, scratchDir } from '../helpers/processes.ts';

/** Debian's chromium (scripts/ensure-deps.sh installs it); tests never download a browser. */
export const chromiumPath = process.env.TESTGROUND_CHROMIUM ?? '/usr/bin/chromium';

/** Where the browser tests save screenshots: kept after the run (under the gitignored .testground/). */
export const screenshotDir =
  process.env.TESTGROUND_TEST_OUTPUT ?? path.join(repoRoot, '.testground/test-output/web');

/** Builds web/dist the way `npm run build:web` does; a test of the page must test the current sources. */
export function buildDashboard(): void {
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/build-web.ts'], {
    cwd: repoRoot,
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new Error(`npm run build:web failed:\n${result.stdout}${result.stderr}`);
}

/** A headless chromium with a new, empty profile (user-data-dir); `close` also removes the profile. */
export async function launchChromium(): Promise<{ context: BrowserContext; close: () => Promise<void> }> {
  if (!existsSync(chromiumPath)) {
    throw new Error(
      `no chromium at ${chromiumPath}: install Debian's with "apt-get install -y chromium" (scripts/ensure-deps.sh does), or set TESTGROUND_CHROMIUM`,
    );
  }
  const profile = await scratchDir('chromium-profile');
  const context = await chromium.launchPersistentContext(profile.dir, {
    executablePath: chromiumPath,
    headless: true,
    acceptDownloads: true,
    viewport: { width: 1280, height: 900 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
    ],
  });
  return {
    context,
    close: async () => {
      try {
        await context.close();
      } finally {
        await profile.remove();
      }
    },
  };
}
