/**
 * A handful of realistic messages for the demo's mailbox: plain text, HTML, a UTF-8 subject
 * (RFC 2047), a line starting with a dot, and a PDF-like attachment. LF line endings, as an MTA
 * delivers into a Maildir.
 */
export interface SeedMessage {
  readonly description: string;
  readonly bytes: Buffer;
}

function message(headers: Record<string, string>, body: string): Buffer {
  const head = Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}`)
    .join('\n');
  return Buffer.from(`${head}\n\n${body}`, 'utf8');
}

function base64Lines(data: Buffer): string {
  return (data.toString('base64').match(/.{1,76}/g) ?? []).join('\n');
}

export function demoMessages(user: string, now = new Date()): SeedMessage[] {
  const date = (minutesAgo: number): string => new Date(now.getTime() - minutesAgo * 60_000).toUTCString();
  const attachment = Buffer.alloc(48 * 1024);
  for (let i = 0; i < attachment.length; i++) attachment[i] = (i * 131 + 7) & 0xff;
  return [
    {
      description: 'plain text',
      bytes: message(
        {
          From: 'Alice Example <alice@example.org>',
          To: user,
          Subject: 'Welcome to popgate',
          Date: date(50),
          'Message-ID': '<welcome.1@example.org>',
          'MIME-Version': '1.0',
          'Content-Type': 'text/plain; charset=us-ascii',
        },
        'Hello!\n\nThis message came to you over POP3, authenticated with an OAuth2 access token.\n' +
          '.A line that starts with a dot survives dot-stuffing both ways.\n\n-- \nAlice\n',
      ),
    },
    {
      description: 'HTML with a text alternative',
      bytes: message(
        {
          From: 'Newsletter <news@example.org>',
          To: user,
          Subject: 'Your weekly digest',
          Date: date(40),
          'Message-ID': '<digest.2@example.org>',
          'MIME-Version': '1.0',
          'Content-Type': 'multipart/alternative; boundary="alt-1"',
        },
        '--alt-1\nContent-Type: text/plain; charset=utf-8\n\nThree things happened this week.\n' +
          '--alt-1\nContent-Type: text/html; charset=utf-8\n\n<html><body><h1>Digest</h1><p>Three things happened this week.</p></body></html>\n' +
          '--alt-1--\n',
      ),
    },
    {
      description: 'UTF-8 subject and body',
      bytes: message(
        {
          From: '=?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.de>',
          To: user,
          Subject: '=?UTF-8?B?R3LDvMOfZSBhdXMgTcO8bmNoZW4g8J+Nug==?=',
          Date: date(30),
          'Message-ID': '<gruesse.3@example.de>',
          'MIME-Version': '1.0',
          'Content-Type': 'text/plain; charset=utf-8',
          'Content-Transfer-Encoding': '8bit',
        },
        'Grüße aus München! Ça va? Ελληνικά, 日本語, emoji 🍺.\n',
      ),
    },
    {
      description: 'an attachment (48 KiB)',
      bytes: message(
        {
          From: 'Bob Example <bob@example.org>',
          To: user,
          Subject: 'The report you asked for',
          Date: date(20),
          'Message-ID': '<report.4@example.org>',
          'MIME-Version': '1.0',
          'Content-Type': 'multipart/mixed; boundary="mix-1"',
        },
        '--mix-1\nContent-Type: text/plain; charset=us-ascii\n\nReport attached.\n' +
          '--mix-1\nContent-Type: application/pdf; name="report.pdf"\nContent-Disposition: attachment; filename="report.pdf"\n' +
          `Content-Transfer-Encoding: base64\n\n${base64Lines(attachment)}\n--mix-1--\n`,
      ),
    },
  ];
}

/** One more message, delivered between two fetches to show that only new mail is fetched. */
export function lateMessage(user: string, now = new Date()): SeedMessage {
  return {
    description: 'mail that arrived between two fetches',
    bytes: message(
      {
        From: 'Carol Example <carol@example.org>',
        To: user,
        Subject: 'One more thing',
        Date: now.toUTCString(),
        'Message-ID': '<late.5@example.org>',
        'MIME-Version': '1.0',
        'Content-Type': 'text/plain; charset=us-ascii',
      },
      'This arrived after the first fetch; the second fetch picks up only this one.\n',
    ),
  };
}
