/**
 * The HTML pages of the development authorization server: sign-in, consent and the device flow.
 * Plain, script-free pages whose element ids the headless-browser tests and the device agent
 * (device-agent.ts) click through: `#login`, `#submit`, `#allow`, `#deny`, `#confirm`, `#abort`,
 * `#device-success`.
 */

export const html = (title: string, body: string): string =>
  `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${title}</title></head><body style="font-family:sans-serif;max-width:36em;margin:2em auto"><h1>${title}</h1>${body}</body></html>`;

export const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The sign-in page of interaction `uid`: any non-empty name is accepted. */
export const loginPage = (uid: string): string =>
  html(
    'Sign in',
    `<form id="popgate-login" method="post" action="/interaction/${uid}/login"><label>User <input id="login" name="login" autocomplete="off"></label> <button id="submit" type="submit">Sign in</button></form>`,
  );

/** The answer to a sign-in form without a name. */
export const loginMissingNamePage = (): string => html('Sign in', '<p>Enter a user name.</p>');

/** The consent page of interaction `uid`, showing the requested scope. */
export const consentPage = (uid: string, scope: string): string =>
  html(
    'Allow access',
    `<p>popgate asks for: <code>${escapeHtml(scope)}</code></p><form id="popgate-consent" method="post" action="/interaction/${uid}/confirm"><button id="allow" type="submit">Allow</button></form><form id="popgate-deny" method="post" action="/interaction/${uid}/abort"><button id="deny" type="submit">Deny</button></form>`,
  );

/** Device flow: the page that asks for the user code (`form` is oidc-provider's own form). */
export const deviceInputPage = (form: string, rejected: boolean): string =>
  html(
    'Device login',
    `${rejected ? '<p id="error">That code was not accepted.</p>' : '<p>Enter the code shown by popgate.</p>'}${form}<button id="submit" type="submit" form="op.deviceInputForm">Continue</button>`,
  );

/** Device flow: the page that confirms or aborts the entered user code. */
export const deviceConfirmPage = (form: string, userCode: string): string =>
  html(
    'Confirm device',
    `<p>Code <code id="user-code">${escapeHtml(userCode)}</code></p>${form}<button id="confirm" type="submit" form="op.deviceConfirmForm">Continue</button><button id="abort" type="submit" form="op.deviceConfirmForm" name="abort" value="yes">Abort</button>`,
  );

/** Device flow: the last page after approval. */
export const deviceSuccessPage = (): string =>
  html('Device approved', '<p id="device-success">You can return to popgate.</p>');
