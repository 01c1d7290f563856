/**
 * Responses declared once: a route's valibot response schema is the OpenAPI document's (openapi.ts),
 * Fastify's response schema (compiled once to a fast-json-stringify serializer), and the check
 * of every success body the handler returns. A body that does not match (a wrong type, a missing
 * field, a field the schema does not declare) is a server error, 500 INTERNAL, never sent: the
 * serializer would otherwise coerce it or drop the field without a word.
 * @module
 */
import { toJsonSchema } from '@valibot/to-json-schema';
import * as v from 'valibot';
import { PROVISION } from '../core/consent/policy.js';

type JsonSchema = { readonly [k: string]: unknown };

// Named (recursive) schemas, as in the OpenAPI document.
const NAMED: Record<string, v.GenericSchema> = { Provision: PROVISION as v.GenericSchema };

/** The checker and the JSON Schema (draft-07, local $defs) of a response schema. */
export interface ResponseCodec {
  /** The JSON Schema Fastify compiles into the route's serializer. */
  readonly json: JsonSchema;
  /**
   * Checks a body against the schema: the valibot schema's own checks, then no field it does not declare.
   * @throws {Error} (a server error, 500 INTERNAL) naming the first mismatch
   */
  readonly check: (body: unknown) => void;
}

/** Builds the codec of a route's response schema (once, when the route is registered). */
export function responseCodec(schema: v.GenericSchema, route: string): ResponseCodec {
  const json = toJsonSchema(schema, { errorMode: 'ignore', definitions: NAMED }) as JsonSchema;
  const defs = (json['$defs'] ?? {}) as Record<string, JsonSchema>;
  return {
    json,
    check(body) {
      const r = v.safeParse(schema, body);
      if (!r.success) {
        const i = r.issues[0];
        throw new Error(`the response of ${route} does not match its schema: ${(i.path ?? []).map((p) => String(p.key)).join('.') || '$'}: ${i.message}`);
      }
      const extra = undeclared(json, body, defs, '');
      if (extra !== undefined) throw new Error(`the response of ${route} does not match its schema: ${extra}: a field the schema does not declare`);
    },
  };
}

// The path of the first object key the schema does not declare (types are valibot's to check).
function undeclared(s: JsonSchema, x: unknown, defs: Record<string, JsonSchema>, path: string): string | undefined {
  const ref = s['$ref'];
  if (typeof ref === 'string' && ref.startsWith('#/$defs/')) return undeclared(defs[ref.slice('#/$defs/'.length)] ?? {}, x, defs, path);
  const anyOf = s['anyOf'] ?? s['oneOf'];
  if (Array.isArray(anyOf)) {
    let first: string | undefined;
    for (const branch of anyOf as JsonSchema[]) {
      const r = undeclared(branch, x, defs, path);
      if (r === undefined) return undefined;
      first ??= r;
    }
    return first;
  }
  const at = (k: string | number) => (path ? `${path}.${k}` : String(k));
  if (Array.isArray(x)) {
    const items = s['items'];
    if (items && typeof items === 'object' && !Array.isArray(items)) {
      for (let i = 0; i < x.length; i++) {
        const r = undeclared(items as JsonSchema, x[i], defs, at(i));
        if (r !== undefined) return r;
      }
    }
    return undefined;
  }
  if (typeof x !== 'object' || x === null) return undefined;
  const properties = s['properties'] as Record<string, JsonSchema> | undefined;
  const additional = s['additionalProperties'];
  if (!properties && (additional === undefined || additional === true)) return undefined; // {}: anything
  for (const k of Object.keys(x)) {
    const value = (x as Record<string, unknown>)[k];
    const declared = properties && Object.hasOwn(properties, k) ? properties[k]! : typeof additional === 'object' && additional !== null ? (additional as JsonSchema) : undefined;
    if (declared === undefined) {
      if (additional === true) continue;
      if (value === undefined) continue; // not serialized
      return at(k);
    }
    const r = undeclared(declared, value, defs, at(k));
    if (r !== undefined) return r;
  }
  return undefined;
}
