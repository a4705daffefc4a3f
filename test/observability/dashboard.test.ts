/**
 * The scheduler's dashboard as a person sees it: headless Chromium loads `/` of the scheduler's
 * status address against a running cluster, finds the stores and the regions drawn, and sees a
 * split appear without reloading the page. A screenshot is saved under artifacts/ (git-ignored).
 *
 * Needs a Chromium (Debian's `chromium`; CHROMIUM_PATH overrides where it is looked for); without
 * one the test is skipped with a message saying so.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvClient } from "../../src/client/index.js";
import { FAST_STORE_CONFIG, ProcessCluster } from "../harness/processes.js";
import { waitFor } from "../harness/wait.js";
import { addStoreWithDefaultStatus } from "./default-status-stores.js";

const BROWSER_CANDIDATES = [
  process.env.CHROMIUM_PATH,
  "/usr/bin/chromium",
  "/usr/bin/chromium-browser",
  "/usr/bin/google-chrome",
];
const browserPath = BROWSER_CANDIDATES.find((p): p is string => !!p && existsSync(p));
const ARTIFACTS = join(process.cwd(), "artifacts");

if (!browserPath) {
  console.warn(
    `dashboard test skipped: no Chromium found (looked at ${BROWSER_CANDIDATES.filter(Boolean).join(", ")}); apt-get install -y chromium`,
  );
}

interface Drawn {
  stores: number;
  /** Each region box's leader store id ("" while it has none), in key order. */
  regions: string[];
  charts: number;
  /** Each store row's ops/s cell. */
  opsCells: string[];
}

// Runs in the page (a string, since this project's TypeScript has no DOM types).
const DRAWN = `({
  stores: document.querySelectorAll("#stores tbody tr[data-store-id]").length,
  regions: [...document.querySelectorAll("#keyspace .region")].map((r) => r.dataset.leaderStore || ""),
  charts: document.querySelectorAll("#chart-ops canvas, #chart-latency canvas").length,
  opsCells: [...document.querySelectorAll("#stores tbody tr")].map((r) => (r.children[7] ? r.children[7].textContent : "")),
})`;

describe.skipIf(!browserPath)("the scheduler's dashboard in headless Chromium", () => {
  // Small regions, so a few hundred writes split the first one.
  const cluster = new ProcessCluster({ ...FAST_STORE_CONFIG, regionMaxSize: 24 * 1024, regionSplitSize: 16 * 1024 });
  let kv: KvClient | undefined;
  // puppeteer-core's types, without importing them where no browser is installed.
  let browser: import("puppeteer-core").Browser | undefined;

  beforeAll(async () => {
    await cluster.startScheduler({ status: true });
    for (const n of [1, 2, 3]) await addStoreWithDefaultStatus(cluster, n);
    const puppeteer = await import("puppeteer-core");
    browser = await puppeteer.launch({
      executablePath: browserPath!,
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    });
  }, 60_000);

  afterAll(async () => {
    kv?.close();
    await browser?.close();
    await cluster.shutdown();
  });

  it("draws stores, regions and charts, and shows a split without a reload", async () => {
    kv = await KvClient.connect({ scheduler: cluster.schedulerAddr, timeoutMs: 20_000 });
    await kv.put("warm-up", "1");
    const page = await browser!.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    const pageErrors: string[] = [];
    page.on("pageerror", (err) => pageErrors.push(String(err)));
    await page.goto(`http://${cluster.schedulerStatusAddr}/`, { waitUntil: "load" });

    const drawn = () => page.evaluate(DRAWN) as Promise<Drawn>;
    const first = await waitFor(
      async () => {
        const d = await drawn();
        return d.stores === 3 && d.regions.length === 1 && d.regions[0] !== "" && d.charts === 2 ? d : undefined;
      },
      {
        timeoutMs: 30_000,
        message: "the page never showed 3 stores and the first region with its leader and both charts",
      },
    );
    expect(first.regions).toHaveLength(1);

    // A marker in the page's window survives only if the page is never reloaded.
    await page.evaluate("window.notReloaded = true");
    const value = "v".repeat(250);
    for (let base = 0; base < 150; base += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, j) => kv!.put(`key-${String(base + j).padStart(5, "0")}`, value)),
      );
    }
    const split = await waitFor(
      async () => {
        const d = await drawn();
        return d.regions.length >= 2 ? d : undefined;
      },
      { timeoutMs: 30_000, message: `the page never showed a second region after 37 KiB of writes\n${cluster.logs()}` },
    );
    expect(split.regions.length).toBeGreaterThanOrEqual(2);
    expect(await page.evaluate("window.notReloaded === true")).toBe(true);
    // While writes flow, some store's ops/s cell shows a figure read from its /metrics.
    await waitFor(
      async () => {
        await kv!.put("tick", "1");
        return (await drawn()).opsCells.some((c) => Number(c) > 0) ? true : undefined;
      },
      { timeoutMs: 15_000, message: "no store's ops/s cell ever showed the writes", intervalMs: 100 },
    );
    expect(pageErrors).toEqual([]);

    mkdirSync(ARTIFACTS, { recursive: true });
    const shot = join(ARTIFACTS, "dashboard.png");
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`dashboard screenshot: ${shot}`);
  });
});
