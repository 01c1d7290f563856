/**
 * `custos model register|approve|retire|list|show|plan` (issue 14: the model registry and change
 * control; docs/models.md), and the change control part of `custos train`.
 * @module
 */
import { ValidationError } from '../../core/errors.js';
import { toHex } from '../../core/hash.js';
import { openLog } from '../../log/data-dir.js';
import type { AppendResult } from '../../log/log.js';
import { Governance, type Actor, type ChangeControlResult, type ModelLineView, type ModelVersionView } from '../../service/governance.js';
import type { CommandContext } from '../context.js';
import { sha256File } from '../file-digest.js';
import { printFields, printJson } from '../output.js';
import { readJsonFile } from './governance.js';
import { governanceRoleOptions } from '../roles-file.js';

/** `--roles FILE`: the role table the acting role is checked against (default: the default table). */
export interface RolesOption {
  readonly roles?: string | undefined;
}

async function withGovernance<T>(ctx: CommandContext, fn: (g: Governance) => Promise<T>, rolesFile?: string): Promise<T> {
  const roleOptions = governanceRoleOptions(ctx.io, rolesFile);
  const { dir, log } = await openLog(ctx.dataDir, { storeUrl: ctx.storeUrl });
  try {
    return await fn(await Governance.open({ log, ...roleOptions }));
  } finally {
    await log.close();
    await dir.store.close();
  }
}

const eventJson = (e: AppendResult) => ({ index: e.index, leafHash: toHex(e.leafHash), treeSize: e.checkpoint.treeSize, rootHash: toHex(e.checkpoint.rootHash) });

/** Splits `NAME@VERSION` (the version required unless `optional`). */
export function parseModelRef(ref: string, optional = false): { model: string; version?: string } {
  const at = ref.indexOf('@');
  if (at < 0) {
    if (optional) return { model: ref };
    throw new ValidationError('VALIDATION_FAILED', `expected NAME@VERSION, e.g. lesion_classifier@1.0.0, got ${JSON.stringify(ref.slice(0, 80))}`);
  }
  return { model: ref.slice(0, at), version: ref.slice(at + 1) };
}

/** Options of {@link modelRegister}. */
export interface ModelRegisterOptions extends RolesOption {
  readonly weightsHash?: string | undefined;
  readonly weightsFile?: string | undefined;
  readonly intendedUse: string;
  readonly riskClass: string;
  readonly spec?: string | undefined;
}

/** `custos model register NAME@VERSION`. */
export async function modelRegister(ctx: CommandContext, ref: string, o: ModelRegisterOptions, actor: Actor): Promise<void> {
  const { model, version } = parseModelRef(ref);
  if ((o.weightsHash === undefined) === (o.weightsFile === undefined)) throw new ValidationError('VALIDATION_FAILED', 'give one of --weights-hash SHA256 or --weights-file PATH');
  const weightsHash = o.weightsHash ?? (await sha256File(ctx.io, o.weightsFile!, '--weights-file')).digest;
  const spec = o.spec === undefined ? {} : readJsonFile(ctx.io, o.spec, 'model spec');
  const r = await withGovernance(
    ctx,
    (g) => g.registerModel({ model, version: version!, weightsHash, intendedUse: o.intendedUse, riskClass: o.riskClass, spec: spec as Record<string, unknown> }, actor),
    o.roles,
  );
  if (ctx.json) return printJson(ctx.io, { model: r.model, version: r.version, specHash: r.specHash, event: eventJson(r.event) });
  printFields(ctx.io, {
    registered: `${r.model}@${r.version} (not usable until approved: custos model approve ${r.model}@${r.version})`,
    'spec hash': r.specHash,
    'logged as': `MODEL_REGISTERED, entry ${r.event.index}`,
  });
}

/** `custos model approve NAME@VERSION`. */
export async function modelApprove(ctx: CommandContext, ref: string, actor: Actor, o: RolesOption = {}): Promise<void> {
  const { model, version } = parseModelRef(ref);
  const r = await withGovernance(ctx, (g) => g.approveModel(model, version!, actor), o.roles);
  if (ctx.json) return printJson(ctx.io, { model, version, event: eventJson(r.event) });
  printFields(ctx.io, { approved: `${model}@${version} (weights ${r.version.weightsHash})`, 'logged as': `MODEL_APPROVED, entry ${r.event.index}` });
}

/** `custos model retire NAME@VERSION [--reason CODE]`. */
export async function modelRetire(ctx: CommandContext, ref: string, reason: string | undefined, actor: Actor, o: RolesOption = {}): Promise<void> {
  const { model, version } = parseModelRef(ref);
  const r = await withGovernance(ctx, (g) => g.retireModel(model, version!, actor, reason), o.roles);
  if (ctx.json) return printJson(ctx.io, { model, version, event: eventJson(r.event) });
  printFields(ctx.io, { retired: `${model}@${version}${reason ? ` (${reason})` : ''}: inferences under it are refused`, 'logged as': `MODEL_RETIRED, entry ${r.event.index}` });
}

function versionLine(x: ModelVersionView): string {
  const how = x.approval ? ` approved (${x.approval.basis}${x.approval.plan ? ` ${x.approval.plan}` : ''}) entry ${x.approval.index}` : '';
  const cc = x.changeControl ? `  plan ${x.changeControl.plan}: ${x.changeControl.outcome}` : '';
  return `  ${x.version}  ${x.status}  ${x.intendedUse} ${x.riskClass}  weights ${x.weightsHash}  registered entry ${x.registered.index}${how}${x.retirement ? ` retired entry ${x.retirement.index}` : ''}${cc}  ${x.inferenceCount} inferences\n`;
}

function printLine(ctx: CommandContext, l: ModelLineView): void {
  ctx.io.stdout.write(`${l.model}\n`);
  for (const x of l.versions) ctx.io.stdout.write(versionLine(x));
  for (const p of l.plans) ctx.io.stdout.write(`  plan ${p.planId}: ${p.modifications.join(', ')}; metrics ${p.metrics.join(', ')} (entry ${p.index})\n`);
}

/** `custos model list`. */
export async function modelList(ctx: CommandContext): Promise<void> {
  const lines = await withGovernance(ctx, (g) => g.listModels());
  if (ctx.json) return printJson(ctx.io, { models: lines });
  if (lines.length === 0) ctx.io.stdout.write('no model is registered\n');
  for (const l of lines) printLine(ctx, l);
}

/** `custos model show NAME[@VERSION]`: a line, or a version with the inferences made with it. */
export async function modelShow(ctx: CommandContext, ref: string): Promise<void> {
  const { model, version } = parseModelRef(ref, true);
  const r = await withGovernance(ctx, (g) => g.showModel(model, version));
  if (ctx.json) return printJson(ctx.io, r);
  if ('versions' in r) return printLine(ctx, r);
  printFields(ctx.io, {
    model: `${r.model}@${r.version}`,
    status: r.status,
    'intended use': r.intendedUse,
    'risk class': r.riskClass,
    weights: r.weightsHash,
    'spec hash': r.spec,
    registered: `entry ${r.registered.index} by ${r.registered.actor} (${r.registered.role})${r.origin ? `, from ${r.origin.kind === 'training' ? `training run entry ${r.origin.run}` : `federated line ${r.origin.line} round ${r.origin.round}`}` : ''}`,
    'change control': r.changeControl ? `plan ${r.changeControl.plan}, ${r.changeControl.modification}: ${r.changeControl.outcome} (evaluation ${r.changeControl.evaluation})` : undefined,
    approved: r.approval ? `entry ${r.approval.index} by ${r.approval.actor} (${r.approval.basis}${r.approval.plan ? `, plan ${r.approval.plan}` : ''})` : '-',
    retired: r.retirement ? `entry ${r.retirement.index} by ${r.retirement.actor}${r.retirement.reason ? ` (${r.retirement.reason})` : ''}` : undefined,
    inferences: r.inferences.length === 0 ? 'none' : `${r.inferences.length}: entries ${r.inferences.join(', ')}`,
  });
}

/** `custos model plan commit --file PLAN.json`. */
export async function planCommit(ctx: CommandContext, file: string, actor: Actor, o: RolesOption = {}): Promise<void> {
  const input = readJsonFile(ctx.io, file, 'change control plan');
  const r = await withGovernance(ctx, (g) => g.commitChangePlan(input, actor), o.roles);
  if (ctx.json) return printJson(ctx.io, { plan: r.plan, hash: r.hash, event: eventJson(r.event) });
  printFields(ctx.io, {
    committed: `change control plan ${r.plan.planId} for ${r.plan.model}`,
    modifications: r.plan.modifications.join(', '),
    acceptance: r.plan.acceptance.map((a) => `${a.min ?? '-inf'} <= ${a.metric} <= ${a.max ?? '+inf'}`).join('; '),
    'plan hash': r.hash,
    'logged as': `CHANGE_PLAN_COMMITTED, entry ${r.event.index}`,
  });
}

/** `custos model plan show PLAN_ID`. */
export async function planShow(ctx: CommandContext, planId: string): Promise<void> {
  const r = await withGovernance(ctx, (g) => g.showChangePlan(planId));
  if (ctx.json) return printJson(ctx.io, r);
  printFields(ctx.io, {
    plan: `${r.state.planId} for ${r.state.model}, entry ${r.state.index} by ${r.state.actor}`,
    'plan hash': r.state.hash,
    document: r.documentOk ? 'ok' : 'MISSING OR DOES NOT MATCH THE LOG',
    modifications: r.state.modifications.join(', '),
    acceptance: r.plan ? r.plan.acceptance.map((a) => `${a.min ?? '-inf'} <= ${a.metric} <= ${a.max ?? '+inf'}`).join('; ') : r.state.metrics.join(', '),
    'data constraints': r.plan ? JSON.stringify(r.plan.dataConstraints) : undefined,
  });
}

/** `custos model plan list [--model NAME]`. */
export async function planList(ctx: CommandContext, model: string | undefined): Promise<void> {
  const plans = await withGovernance(ctx, (g) => g.listChangePlans(model));
  if (ctx.json) return printJson(ctx.io, { plans });
  if (plans.length === 0) ctx.io.stdout.write('no change control plan\n');
  for (const p of plans) ctx.io.stdout.write(`${p.planId}  ${p.model}  ${p.modifications.join(', ')}  metrics ${p.metrics.join(', ')}  entry ${p.index}  ${p.hash}\n`);
}

/** The `changeControl` of `custos train --change-control PLAN --metrics FILE [--modification TYPE]` (unchecked: the service parses it). */
export function changeControlOf(ctx: CommandContext, o: { changeControl?: string | undefined; metrics?: string | undefined; modification?: string | undefined }): Record<string, unknown> | undefined {
  if (o.changeControl === undefined) {
    if (o.metrics !== undefined || o.modification !== undefined) throw new ValidationError('VALIDATION_FAILED', '--metrics and --modification go with --change-control PLAN_ID');
    return undefined;
  }
  if (o.metrics === undefined) throw new ValidationError('VALIDATION_FAILED', '--change-control needs --metrics FILE (the evaluation metrics, e.g. {"auroc": 0.93})');
  return { plan: o.changeControl, modification: o.modification ?? 'retrain', metrics: readJsonFile(ctx.io, o.metrics, 'metrics') };
}

/** What `custos train` prints about the version a run under a plan made. */
export function changeControlFields(m: ChangeControlResult): Record<string, string> {
  return {
    'model version': `${m.model}@${m.version}: ${m.outcome} under plan ${m.plan}`,
    ...(m.failures.length > 0 ? { 'out of bounds': m.failures.map((f) => `${f.metric} ${f.value ?? 'missing'} (${f.min ?? '-inf'}..${f.max ?? '+inf'})`).join('; ') } : {}),
    registered: `MODEL_REGISTERED, entry ${m.registered.index}`,
    approval: m.approved ? `MODEL_APPROVED under the plan, entry ${m.approved.index}` : `waiting for a human approval (custos model approve ${m.model}@${m.version})`,
  };
}

/** The JSON of a {@link ChangeControlResult}. */
export function changeControlJson(m: ChangeControlResult): Record<string, unknown> {
  return { ...m, registered: eventJson(m.registered), ...(m.approved ? { approved: eventJson(m.approved) } : {}) };
}
