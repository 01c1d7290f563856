import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the folder holding package.json. */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The published test vectors: ../shared/vectors beside the repository (never copied into it). */
export const VECTORS = join(REPO_ROOT, '..', 'shared', 'vectors');
