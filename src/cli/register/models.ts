/**
 * Registration of `custos model register|approve|retire|list|show|plan` (issue 14: the model registry
 * and change control; docs/models.md). Light: the command's module is imported inside the actions.
 * @module
 */
import type { Command } from 'commander';
import { ValidationError } from '../../core/errors.js';
import type { CommandContext } from '../context.js';
import { ROLES_FILE_HELP } from '../request-flags.js';

function actorOf(o: { actor?: string; actorRole?: string }): { id: string; role: string } {
  if (o.actor === undefined || o.actorRole === undefined) throw new ValidationError('VALIDATION_FAILED', 'say who acts: --actor ID --actor-role ROLE');
  return { id: o.actor, role: o.actorRole };
}

const withActor = (c: Command, role: string) =>
  c.option('--actor <id>', 'who acts (required)').option('--actor-role <role>', `their role code, holding ${role} (required)`).option('--roles <file>', ROLES_FILE_HELP);

/** Registers `custos model ...`. */
export function registerModels(program: Command, ctx: (cmd: Command) => Promise<CommandContext>): void {
  const model = program.command('model').description('the model registry: versions registered, approved and retired, change control plans (docs/models.md)');
  const load = () => import('../commands/models.js');
  withActor(
    model
      .command('register <name@version>')
      .description('register a model version: MODEL_REGISTERED (the spec stored off-ledger); usable once approved')
      .option('--weights-hash <sha256>', 'SHA-256 of the weights file')
      .option('--weights-file <path>', 'compute the SHA-256 by streaming the weights file (instead of --weights-hash)')
      .requiredOption('--intended-use <code>', 'diagnosis, diagnosis_aid, detection, screening, triage, prognosis, monitoring, treatment_planning, workflow or research')
      .requiredOption('--risk-class <code>', 'imdrf_i..imdrf_iv, eu_mdr_i, eu_mdr_iia, eu_mdr_iib, eu_mdr_iii, fda_i..fda_iii or non_device')
      .option('--spec <file.json>', 'the spec document: any JSON object (indications, limitations, performance claims); stored off-ledger'),
    'model:register',
  ).action(
    async (ref: string, o: { weightsHash?: string; weightsFile?: string; intendedUse: string; riskClass: string; spec?: string; actor?: string; actorRole?: string; roles?: string }, cmd: Command) =>
      (await load()).modelRegister(await ctx(cmd), ref, o, actorOf(o)),
  );
  withActor(model.command('approve <name@version>').description('approve a registered version: MODEL_APPROVED; inferences may run under it'), 'model:approve').action(
    async (ref: string, o: { actor?: string; actorRole?: string; roles?: string }, cmd: Command) => (await load()).modelApprove(await ctx(cmd), ref, actorOf(o), o),
  );
  withActor(
    model
      .command('retire <name@version>')
      .description('retire a version: MODEL_RETIRED; inferences under it are refused (MODEL_NOT_APPROVED)')
      .option('--reason <code>', 'superseded, safety, performance or withdrawn'),
    'model:approve',
  ).action(async (ref: string, o: { reason?: string; actor?: string; actorRole?: string; roles?: string }, cmd: Command) => (await load()).modelRetire(await ctx(cmd), ref, o.reason, actorOf(o), o));
  model
    .command('list')
    .description('every model line with its versions (status, approval, plan) and change control plans')
    .action(async (_o: unknown, cmd: Command) => (await load()).modelList(await ctx(cmd)));
  model
    .command('show <name[@version]>')
    .description('a model line, or one version with the entries of the inferences made with it')
    .action(async (ref: string, _o: unknown, cmd: Command) => (await load()).modelShow(await ctx(cmd), ref));

  const plan = model.command('plan').description('change control plans (PCCP): allowed modifications, data constraints, acceptance metrics with bounds');
  withActor(
    plan
      .command('commit')
      .description('commit a change control plan for a model line: CHANGE_PLAN_COMMITTED (the plan stored off-ledger)')
      .requiredOption('--file <plan.json>', 'the plan: {planId, model, modifications, dataConstraints, acceptance: [{metric, min?, max?}], description}'),
    'model:approve',
  ).action(async (o: { file: string; actor?: string; actorRole?: string; roles?: string }, cmd: Command) => (await load()).planCommit(await ctx(cmd), o.file, actorOf(o), o));
  plan
    .command('show <planId>')
    .description('a plan, its document checked against the hash on the log')
    .action(async (id: string, _o: unknown, cmd: Command) => (await load()).planShow(await ctx(cmd), id));
  plan
    .command('list')
    .description('every committed plan')
    .option('--model <name>', 'only the plans of this line')
    .action(async (o: { model?: string }, cmd: Command) => (await load()).planList(await ctx(cmd), o.model));
}
