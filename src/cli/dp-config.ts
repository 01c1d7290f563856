/**
 * issue 15: the differential-privacy budget configuration of a data directory: `dp.json` beside
 * the keys (docs/privacy.md). Absent: the default (one consumer, `public`, with ε = 1, δ = 10⁻⁵ a month, which is also the total).
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ValidationError } from '../core/errors.js';
import { DEFAULT_DP_CONFIG, type DpBudgetConfig } from '../core/dp/accountant.js';
import { parseDpConfig } from '../core/dp/config.js';

/** The file name of the budget configuration in a data directory. */
export const DP_CONFIG_FILE = 'dp.json';

/**
 * Reads `<dataDir>/dp.json`, or the default when there is none.
 * @throws {ValidationError} FILE_UNREADABLE, VALIDATION_FAILED (not JSON, or not a budget configuration)
 */
export function loadDpConfig(dataDir: string): DpBudgetConfig {
  const file = join(dataDir, DP_CONFIG_FILE);
  if (!existsSync(file)) return DEFAULT_DP_CONFIG;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ValidationError('FILE_UNREADABLE', `cannot read ${file}`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ValidationError('VALIDATION_FAILED', `${file} is not valid JSON`, { cause: err });
  }
  return parseDpConfig(json);
}
