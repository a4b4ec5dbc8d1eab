/** Every command handler, in the registry the command resolver reads. One file per command. */
import { createRegistry } from '../registry.ts';
import { auth } from './auth.ts';
import { capa } from './capa.ts';
import { dele } from './dele.ts';
import { list } from './list.ts';
import { noop } from './noop.ts';
import { pass } from './pass.ts';
import { quit } from './quit.ts';
import { retr } from './retr.ts';
import { rset } from './rset.ts';
import { stat } from './stat.ts';
import { stls } from './stls.ts';
import { top } from './top.ts';
import { uidl } from './uidl.ts';
import { user } from './user.ts';

/** The server's command registry. */
export const COMMAND_REGISTRY = createRegistry([
  capa,
  stls,
  auth,
  user,
  pass,
  stat,
  list,
  uidl,
  retr,
  top,
  dele,
  rset,
  noop,
  quit,
]);
