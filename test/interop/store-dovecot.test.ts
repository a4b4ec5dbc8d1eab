// Proof that MaildirStore and a real Dovecot 2.3 agree on the same Maildir: Dovecot serves it
// first (and writes dovecot-uidlist); popgate then serves the same message numbers, the same
// UIDLs, the same sizes and the same bytes. Afterwards the two keep agreeing while popgate
// delivers and deletes. Files are written as Postfix (new/, LF), procmail (cur/ with :2, flags)
// and Dovecot's LDA (,S= and ,W= fields) would.
import assert from 'node:assert/strict';
import { chown, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { crlfLength } from '../../src/store/crlf.ts';
import { MaildirStore } from '../../src/store/maildir-store.ts';
import type { MaildropSession } from '../../src/store/types.ts';
import { type DovecotInstance, startDovecot } from '../helpers/dovecot.ts';
import { peerPath, requirePeer } from '../helpers/peers.ts';

/** A minimal sequential POP3 client: one command at a time, raw bytes kept. */
class RawPop3 {
  #socket: Socket;
  #buffer = Buffer.alloc(0);
  #waiter: (() => void) | undefined;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#waiter?.();
    });
  }

  static async connect(port: number): Promise<RawPop3> {
    const socket = connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new RawPop3(socket);
    await client.#until((b) => (b.indexOf('\r\n') === -1 ? -1 : b.indexOf('\r\n') + 2));
    return client;
  }

  async #until(find: (buffer: Buffer) => number): Promise<Buffer> {
    for (let i = 0; i < 2000; i++) {
      const end = find(this.#buffer);
      if (end !== -1) {
        const out = this.#buffer.subarray(0, end);
        this.#buffer = this.#buffer.subarray(end);
        return out;
      }
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('POP3 timeout')), 10_000);
        this.#waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    throw new Error('POP3 response never ended');
  }

  async command(line: string): Promise<string> {
    this.#socket.write(`${line}\r\n`);
    const status = (
      await this.#until((b) => (b.indexOf('\r\n') === -1 ? -1 : b.indexOf('\r\n') + 2))
    ).toString('latin1');
    if (!status.startsWith('+OK')) throw new Error(`${line.split(' ')[0]} answered ${status.trim()}`);
    return status;
  }

  /** A multi-line command; returns the body dot-unstuffed, with the terminating line removed. */
  async multi(line: string): Promise<Buffer> {
    await this.command(line);
    const raw = await this.#until((b) => {
      if (b.subarray(0, 3).equals(Buffer.from('.\r\n'))) return 3;
      const at = b.indexOf('\r\n.\r\n');
      return at === -1 ? -1 : at + 5;
    });
    const body = raw.subarray(0, raw.length - 3); // drop ".\r\n", keep the CRLF ending the last line
    const lines = body.toString('latin1').split('\r\n');
    return Buffer.from(lines.map((l) => (l.startsWith('.') ? l.slice(1) : l)).join('\r\n'), 'latin1');
  }

  close(): void {
    this.#socket.end('QUIT\r\n');
  }
}

interface Listing {
  uidl: string[];
  sizes: number[];
  bodies: Buffer[];
}

async function dovecotListing(d: DovecotInstance): Promise<Listing> {
  const pop = await RawPop3.connect(d.popPort);
  try {
    await pop.command(`USER ${d.passwordUser.user}`);
    await pop.command(`PASS ${d.passwordUser.password}`);
    const uidl = (await pop.multi('UIDL')).toString('latin1').split('\r\n').filter(Boolean);
    const list = (await pop.multi('LIST')).toString('latin1').split('\r\n').filter(Boolean);
    const bodies: Buffer[] = [];
    for (let i = 1; i <= list.length; i++) bodies.push(await pop.multi(`RETR ${i}`));
    uidl.forEach((l, i) => {
      assert.equal(l.split(' ')[0], String(i + 1));
    });
    return {
      uidl: uidl.map((l) => l.split(' ')[1]!),
      sizes: list.map((l) => Number(l.split(' ')[1])),
      bodies,
    };
  } finally {
    pop.close();
  }
}

async function popgateListing(session: MaildropSession): Promise<Listing> {
  const bodies: Buffer[] = [];
  for (let i = 0; i < session.messages.length; i++) {
    const chunks: Buffer[] = [];
    for await (const chunk of await session.read(i)) chunks.push(chunk as Buffer);
    bodies.push(Buffer.concat(chunks));
  }
  return { uidl: session.messages.map((m) => m.uid), sizes: session.messages.map((m) => m.size), bodies };
}

/** Dovecot ends a message that lacks a final newline with an added CRLF before the ".". */
function onWire(bytes: Buffer): Buffer {
  return bytes.length === 0 || bytes.subarray(-2).equals(Buffer.from('\r\n'))
    ? bytes
    : Buffer.concat([bytes, Buffer.from('\r\n')]);
}

const FILES: Array<[string, string]> = [
  // Postfix local(8) into new/
  ['new/1790000003.V801I2a1bM123456.mx.example', 'From: a@example.net\nSubject: postfix\n\nHello.\n'],
  // procmail into cur/ after a client marked it seen
  [
    'cur/1790000001.4711_0.mx.example:2,S',
    'From: b@example.net\nSubject: procmail\n\n.leading dot\n..two\n.\nend\n',
  ],
  // Dovecot LDA naming with size fields; CRLF stored
  ['new/1790000002.M5P77.mx.example,S={S},W={W}', 'From: c@example.net\r\nSubject: lda\r\n\r\nbody\r\n\r\n'],
  // no final newline, a lone CR
  ['new/1790000004.M9P78.mx.example', 'From: d@example.net\nSubject: tail\n\nlone\rcr and no newline'],
  // same second as the first Postfix file: order by microseconds, then name
  ['new/1790000003.M1P79.mx.example', 'From: e@example.net\nSubject: same second\n\nx\n'],
];

describe('MaildirStore and Dovecot serve the same Maildir identically', () => {
  let d: DovecotInstance | undefined;
  let root: string;
  let maildir: string;
  let dovecotFirst: Listing;

  before(async () => {
    if (!peerPath('dovecot')) return;
    d = await startDovecot();
    maildir = await d.maildirOf(d.passwordUser.user);
    for (const [rel, body] of FILES) {
      const bytes = Buffer.from(body);
      const path = join(
        maildir,
        rel.replace('{S}', String(bytes.length)).replace('{W}', String(crlfLength(bytes))),
      );
      await writeFile(path, body);
      await chown(path, d.mailUid, d.mailGid);
    }
    await writeFile(join(maildir, 'tmp', '1790000009.M1P1.mx.example'), 'in progress\n'); // ignored by both
    root = await mkdtemp(join(tmpdir(), 'popgate-store-dovecot-'));
    await symlink(maildir, join(root, d.passwordUser.user));
    dovecotFirst = await dovecotListing(d);
  });

  after(async () => {
    await d?.stop();
    if (root) await rm(root, { recursive: true, force: true });
  });

  test('Dovecot wrote a dovecot-uidlist for the Maildir', async (t) => {
    if (!requirePeer(t, 'dovecot')) return;
    const text = await readFile(join(maildir, 'dovecot-uidlist'), 'utf8');
    assert.match(text, /^3 V\d+ N\d+/);
    assert.equal(dovecotFirst.uidl.length, FILES.length);
  });

  test('popgate serves the UIDLs, numbering, sizes and bytes Dovecot served', async (t) => {
    if (!requirePeer(t, 'dovecot')) return;
    const store = new MaildirStore(root);
    const session = await store.open(d!.passwordUser.user);
    const ours = await popgateListing(session);
    await session.release();
    await store.close();
    assert.deepEqual(ours.uidl, dovecotFirst.uidl);
    assert.deepEqual(ours.sizes, dovecotFirst.sizes);
    assert.deepEqual(ours.bodies.map(onWire), dovecotFirst.bodies);
  });

  test('the UIDLs stay the same in a later session of a new store instance', async (t) => {
    if (!requirePeer(t, 'dovecot')) return;
    const store = new MaildirStore(root);
    const session = await store.open(d!.passwordUser.user);
    const uids = session.messages.map((m) => m.uid);
    await session.release();
    await store.close();
    assert.deepEqual(uids, dovecotFirst.uidl);
  });

  test('after popgate delivers and deletes, Dovecot still agrees on the messages they share', async (t) => {
    if (!requirePeer(t, 'dovecot')) return;
    const store = new MaildirStore(root);
    const user = d!.passwordUser.user;
    const fresh = await store.deliver(
      user,
      Buffer.from('From: f@example.net\nSubject: via popgate\n\nnew\n'),
    );
    for (const name of await readdir(join(maildir, 'new')))
      await chown(join(maildir, 'new', name), d!.mailUid, d!.mailGid);
    const session = await store.open(user);
    assert.equal(session.messages.at(-1)?.uid, fresh);
    await session.commit([1]); // deletes Dovecot's message 2
    const again = await store.open(user);
    const ours = await popgateListing(again);
    await again.release();
    await store.close();
    const theirs = await dovecotListing(d!);
    const expectedShared = dovecotFirst.uidl.filter((_, i) => i !== 1);
    assert.deepEqual(theirs.uidl.slice(0, expectedShared.length), expectedShared);
    assert.deepEqual(ours.uidl.slice(0, expectedShared.length), expectedShared);
    assert.equal(theirs.uidl.length, ours.uidl.length, 'both see the delivered message');
    assert.deepEqual(ours.sizes, theirs.sizes);
    assert.deepEqual(ours.bodies.map(onWire), theirs.bodies);
  });
});
