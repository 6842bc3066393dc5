// npm `oidc-provider`, unchanged, as the identity provider the web console's browser
// test signs in at (tests/tests/e2e/console.rs). Configured from one JSON file:
//   node provider.mjs <config.json>
//   {"port": 0, "clients": [{"client_id", "client_secret", "redirect_uris"}],
//    "users": {"<login>": {"email": "...", "groups": ["..."]}}}
// The development interactions (a login form that takes any password) stand in for a
// real login page; everything else — discovery, PKCE, codes, signed ID tokens with
// auth_time, max_age and prompt=login — is the library's own. Prints
// `listening <issuer>` once ready.
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const issuer = `http://127.0.0.1:${config.port}`;

const provider = new Provider(issuer, {
  clients: config.clients.map((c) => ({
    ...c,
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
  })),
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], groups: ['groups'] },
  // Scope claims go into the ID token: the console reads identity and groups from it.
  conformIdTokenClaims: false,
  cookies: { keys: ['airlock-console-e2e-cookie-key-not-secret'] },
  async findAccount(_ctx, id) {
    const user = config.users[id];
    if (!user) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: user.email, email_verified: true, groups: user.groups };
      },
    };
  },
  // First-party client: no consent screen (the recipe from the library's docs).
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid email groups');
    await grant.save();
    return grant;
  },
});

const server = provider.listen(config.port, '127.0.0.1', () => {
  console.log(`listening ${issuer}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
