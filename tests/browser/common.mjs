// What the browser tests share: reading their settings from the environment
// (set by the Rust test that runs them) and starting Debian's chromium.
import { chromium } from 'playwright-core';

// The value of a required environment variable.
export const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

// Prints a step of the run, so a failure says how far it got.
export const step = (what) => console.log(`-- ${what}`);

// Starts chromium (CHROMIUM, default /usr/bin/chromium).
export const launch = () =>
  chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    // Root needs --no-sandbox; the rest keeps chromium off the network it
    // cannot reach here anyway.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
