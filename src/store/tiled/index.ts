export { TiledStore } from './tiled-store.js';
export type { BundleRow, Maybe, TailEntryRow, TiledDriver } from './driver.js';
export { EMPTY, planAppend, sizeFromMax, tileId, type AppendPlan, type AppendRows, type NodeRange, type NodeRow, type TakenNodeRow } from './layout.js';
