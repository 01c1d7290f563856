/**
 * Registration of `custos fl ...` (issue 14: federated learning rounds). Light: the command's module
 * (the log, SQLite) is imported inside the actions.
 * @module
 */
import type { Command } from 'commander';
import { ValidationError } from '../../core/errors.js';
import type { CommandContext } from '../context.js';
import { parseLimit } from '../parse.js';

function actorOf(o: { actor?: string; actorRole?: string }): { id: string; role: string } {
  if (o.actor === undefined || o.actorRole === undefined) throw new ValidationError('VALIDATION_FAILED', 'say who acts: --actor ID --actor-role ROLE');
  return { id: o.actor, role: o.actorRole };
}

const load = () => import('../commands/federated.js');

/** Registers `custos fl site keygen|register|retire|list`, `custos fl sign`, `custos fl round`, `custos fl lines` and `custos fl rounds`. */
export function registerFederated(program: Command, ctx: (cmd: Command) => Promise<CommandContext>): void {
  const fl = program.command('fl').description('federated learning: sites with their own Ed25519 keys, signed rounds of a model line (docs/federated.md)');
  const site = fl.command('site').description('federated learning sites');
  site
    .command('keygen')
    .description("make a site's Ed25519 key: the private key goes to --out (mode 0600), the verifier key is printed for registration")
    .requiredOption('--site <id>', 'the site id (lowercase identifier; the key is named after it)')
    .requiredOption('--out <file>', 'where to write the private key (must not exist)')
    .action(async (o: { site: string; out: string }, cmd: Command) => (await load()).flSiteKeygen(await ctx(cmd), o));
  site
    .command('register')
    .description('register a site with its verifier key: an FL_SITE_REGISTERED event (needs fl:sites)')
    .requiredOption('--site <id>', 'the site id')
    .requiredOption('--key <vkey>', 'its verifier key (site+keyid+base64, from fl site keygen), or a file holding it')
    .option('--actor <id>', 'who registers (required)')
    .option('--actor-role <role>', 'their role code, holding fl:sites (required)')
    .action(async (o: { site: string; key: string; actor?: string; actorRole?: string }, cmd: Command) => {
      const c = await ctx(cmd);
      const { readKeyArg } = await import('../keys.js');
      return (await load()).flSiteRegister(c, { site: o.site, key: readKeyArg(c, o.key, 'site key') }, actorOf(o));
    });
  site
    .command('retire <site>')
    .description('retire a site: an FL_SITE_RETIRED event; later rounds naming it are refused (needs fl:sites)')
    .option('--actor <id>', 'who retires it (required)')
    .option('--actor-role <role>', 'their role code, holding fl:sites (required)')
    .action(async (id: string, o: { actor?: string; actorRole?: string }, cmd: Command) => (await load()).flSiteRetire(await ctx(cmd), id, actorOf(o)));
  site
    .command('list')
    .description('list the registered sites (retired ones too)')
    .action(async (_o: unknown, cmd: Command) => (await load()).flSiteList(await ctx(cmd)));
  fl.command('sign')
    .description("sign a site's update for a round (run at the site; prints the round file's entry for this site)")
    .requiredOption('--site-key <file>', "the site's private key file (from fl site keygen)")
    .option('--log <origin>', "the origin line of the coordinator's log (default: the origin of --data-dir)")
    .requiredOption('--line <line>', 'the model line')
    .requiredOption('--round <n>', 'the round number')
    .option('--update-digest <hex>', 'SHA-256 of the update, 64 lowercase hex')
    .option('--update-file <file>', 'the update file itself (its SHA-256 is computed by streaming it)')
    .action(async (o: { siteKey: string; log?: string; line: string; round: string; updateDigest?: string; updateFile?: string }, cmd: Command) =>
      (await load()).flSign(await ctx(cmd), {
        siteKey: o.siteKey,
        ...(o.log === undefined ? {} : { log: o.log }),
        line: o.line,
        round: parseLimit(o.round, 'round', Number.MAX_SAFE_INTEGER),
        ...(o.updateDigest === undefined ? {} : { updateDigest: o.updateDigest }),
        ...(o.updateFile === undefined ? {} : { updateFile: o.updateFile }),
      }),
    );
  fl.command('round <file>')
    .description('record a round from a JSON round file (- for stdin): FL_ROUND, or FL_ROUND_REFUSED and its code (needs fl:coordinate)')
    .option('--actor <id>', 'who records it (required)')
    .option('--actor-role <role>', 'their role code, holding fl:coordinate (required)')
    .action(async (file: string, o: { actor?: string; actorRole?: string }, cmd: Command) => (await load()).flRound(await ctx(cmd), file, actorOf(o)));
  fl.command('lines')
    .description('the model lines the log has a round or refused round of, with their counts')
    .action(async (_o: unknown, cmd: Command) => (await load()).flLines(await ctx(cmd)));
  fl.command('rounds <line>')
    .description("a line's rounds and refused rounds, with the DP accountant's running total")
    .action(async (line: string, _o: unknown, cmd: Command) => (await load()).flRounds(await ctx(cmd), line));
}
