/**
 * The tables of a log, described once and rendered as DDL for each backend's migrations
 * (store/<backend>/schema.ts). The released migrations are these renderings: a change here is a
 * change of a released migration, so add tables or columns through a new migration instead.
 * @module
 */

/**
 * Column types: `int` a small integer, `index` an index or size (below 2^53), `blob` bytes, `text`
 * text, `key` text that is compared and ordered byte by byte (keyset pagination).
 */
export type ColumnType = 'int' | 'index' | 'blob' | 'text' | 'key';

/** One table: columns are NOT NULL; `key` names the primary key columns. */
export interface TableSpec {
  readonly name: string;
  /** SQL comment lines written above the CREATE TABLE. */
  readonly comment: readonly string[];
  readonly columns: readonly (readonly [name: string, type: ColumnType])[];
  readonly key: readonly string[];
  /** Secondary indexes: name and columns. */
  readonly indexes?: readonly (readonly [name: string, columns: readonly string[]])[];
  /** Rows are small: SQLite keeps them in the primary key's b-tree (WITHOUT ROWID). */
  readonly small?: boolean;
  /** Columns holding incompressible bytes (PostgreSQL stores them out of line, uncompressed). */
  readonly incompressible?: readonly string[];
}

/** How a backend spells the column types and table options. */
export interface DdlDialect {
  readonly types: Readonly<Record<ColumnType, string>>;
  /** Appended after the closing parenthesis of a `small` table. */
  readonly smallTable: string;
  /** The statement that stores a column out of line uncompressed, if the backend has one. */
  readonly incompressible?: (table: string, column: string) => string;
}

export const LOG_TABLES: readonly TableSpec[] = [
  {
    name: 'meta',
    comment: [],
    columns: [
      ['key', 'key'],
      ['value', 'text'],
    ],
    key: ['key'],
    small: true,
  },
  {
    name: 'entry_bundles',
    comment: ['The log is stored in the C2SP tlog-tiles layout (see core/merkle/tiles.ts).', 'Complete entry bundles: 256 entries each, every entry prefixed by its uint16 big-endian length.'],
    columns: [
      ['idx', 'index'],
      ['data', 'blob'],
    ],
    key: ['idx'],
  },
  {
    name: 'entry_tail',
    comment: ['Entries after the last complete bundle (at most 255 rows), moved into a bundle when it fills.'],
    columns: [
      ['idx', 'index'],
      ['data', 'blob'],
    ],
    key: ['idx'],
  },
  {
    name: 'tiles',
    comment: [
      'Complete tiles, "fat": the 256-hash C2SP tile (tree level 8*level) then its interior rows.',
      'id = level * 2^40 + index: a rowid key in SQLite, because rows of 16 KiB belong in a rowid table',
      '(WITHOUT ROWID tables are for small rows; reads were several times slower).',
    ],
    columns: [
      ['id', 'index'],
      ['hashes', 'blob'],
    ],
    key: ['id'],
    incompressible: ['hashes'],
  },
  {
    name: 'node_tail',
    comment: ['Node hashes (leaves included) of tiles not yet complete: the right edge of the tree.'],
    columns: [
      ['level', 'int'],
      ['idx', 'index'],
      ['hash', 'blob'],
    ],
    key: ['level', 'idx'],
    small: true,
  },
  {
    name: 'checkpoints',
    comment: ['One signed checkpoint per committed batch. note is the C2SP signed note (the authority).'],
    columns: [
      ['tree_size', 'index'],
      ['root', 'blob'],
      ['note', 'text'],
      ['time_ms', 'index'],
    ],
    key: ['tree_size'],
  },
];

export const SIDECAR_TABLES: readonly TableSpec[] = [
  {
    name: 'documents',
    comment: ['Off-ledger documents (policy versions, manifests, receipts), content-addressed: hash is the', 'SHA-256 (hex) of data, which is canonical JSON. The log commits to the hash.'],
    columns: [
      ['hash', 'key'],
      ['kind', 'text'],
      ['data', 'blob'],
    ],
    key: ['hash'],
  },
  {
    name: 'commitments',
    comment: [
      'Openings of the salted commitments on the log: SHA-256(salt || value) = commitment.',
      'One salt per (kind, value) as a rule; two writers racing on a new value may each commit with',
      'their own salt, so (kind, value) is not unique: every commitment on the log keeps its opening.',
      "Deleting a value's rows erases the link between the log and the value.",
    ],
    columns: [
      ['commitment', 'key'],
      ['kind', 'text'],
      ['value', 'text'],
      ['salt', 'blob'],
    ],
    key: ['commitment'],
    indexes: [['commitments_by_value', ['kind', 'value']]],
  },
  {
    name: 'state',
    comment: ['State derived from the log and written with the event it derives from (e.g. policy heads).'],
    columns: [
      ['ns', 'key'],
      ['key', 'key'],
      ['value', 'text'],
    ],
    key: ['ns', 'key'],
    small: true,
  },
];

/** The DDL that creates `tables` in `dialect`. */
export function createTablesSql(tables: readonly TableSpec[], dialect: DdlDialect): string {
  const out: string[] = [];
  for (const t of tables) {
    const single = t.key.length === 1 ? t.key[0] : undefined;
    const width = Math.max(...t.columns.map(([name]) => name.length));
    const lines = t.columns.map(([name, type]) => `    ${name.padEnd(width)} ${dialect.types[type]}${name === single ? ' PRIMARY KEY' : ' NOT NULL'}`);
    if (single === undefined) lines.push(`    PRIMARY KEY (${t.key.join(', ')})`);
    out.push(
      ...t.comment.map((c) => `  -- ${c}`),
      `  CREATE TABLE ${t.name} (\n${lines.join(',\n')}\n  )${t.small ? dialect.smallTable : ''};`,
      ...(t.indexes ?? []).map(([name, cols]) => `  CREATE INDEX ${name} ON ${t.name} (${cols.join(', ')});`),
      ...(dialect.incompressible ? (t.incompressible ?? []).map((c) => `  ${dialect.incompressible!(t.name, c)};`) : []),
    );
  }
  return `\n${out.join('\n')}\n`;
}
