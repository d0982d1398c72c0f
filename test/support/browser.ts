import * as fs from "node:fs"
import * as path from "node:path"
import { chromium, type Browser, type Page } from "playwright-core"

/** Debian's Chromium: the browser tests drive it with playwright-core and never download one. */
export const CHROMIUM = "/usr/bin/chromium"

const root = path.resolve(new URL("../..", import.meta.url).pathname)
export const screenshotDir = path.join(root, "test-results", "screenshots")

/** Headless Chromium; without it, a failure that says how to install it (the browser tests are never skipped). */
export const launchChromium = async (): Promise<Browser> => {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`the browser tests need Chromium at ${CHROMIUM}, which is missing: install it with \`apt-get install -y chromium\``)
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run", "--disable-component-update", "--disable-sync"]
  })
}

/** Saves the page as `test-results/screenshots/<view>-<width>.png`; answers the path. */
export const screenshot = async (page: Page, view: string): Promise<string> => {
  fs.mkdirSync(screenshotDir, { recursive: true })
  const file = path.join(screenshotDir, `${view}-${page.viewportSize()?.width ?? 0}.png`)
  await page.screenshot({ path: file, fullPage: true })
  return file
}
