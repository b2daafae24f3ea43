// A company's identity provider for the tests: the real oidc-provider (OpenID Certified) on
// 127.0.0.1, with Hoist registered as a public native client (PKCE, loopback redirects on any
// port as RFC 8252 allows, the device authorization grant, refresh tokens) and access tokens
// for hoist-server issued as signed JWTs (RFC 9068) that carry the user's email and groups.
//
// Environment: OIDC_PORT (required), OIDC_AUDIENCE (the access tokens' `aud`, default
// "hoist-server"), OIDC_ACCESS_TOKEN_TTL (seconds, default 600), OIDC_SIGNING_ALG (RS256 or
// ES256, default RS256), OIDC_USERS (JSON: {"alice": {"email": "...", "groups": ["design"]}}),
// OIDC_WEB_REDIRECT (a web app's page, registered as the browser client `web-app`).
// Sign-in uses the provider's development pages: any password, but only the users above.
// Prints "ready <issuer>" on stdout once it listens.
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.OIDC_PORT);
if (!port) throw new Error('OIDC_PORT is required');
const issuer = `http://127.0.0.1:${port}`;
const audience = process.env.OIDC_AUDIENCE || 'hoist-server';
const accessTokenTTL = Number(process.env.OIDC_ACCESS_TOKEN_TTL || 600);
const alg = process.env.OIDC_SIGNING_ALG || 'RS256';
const users = JSON.parse(process.env.OIDC_USERS || '{"alice":{"email":"alice@example.com","groups":["design"]}}');

// An RSA key (ID tokens are RS256 by default) and an EC one; access tokens use OIDC_SIGNING_ALG.
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
const keys = [
  { ...rsa.export({ format: 'jwk' }), kid: 'test-rs256', use: 'sig', alg: 'RS256' },
  { ...ec.export({ format: 'jwk' }), kid: 'test-es256', use: 'sig', alg: 'ES256' },
];

const claimsOf = (sub) => ({ sub, email: users[sub].email, email_verified: true, groups: users[sub].groups || [], name: users[sub].name || sub });

// The company's web app (tests/uppy), when OIDC_WEB_REDIRECT names its page: a public browser
// client (PKCE, no secret), allowed CORS from its own origin for the token exchange.
const webApp = process.env.OIDC_WEB_REDIRECT
  ? [{
      client_id: 'web-app',
      application_type: 'web',
      token_endpoint_auth_method: 'none',
      redirect_uris: [process.env.OIDC_WEB_REDIRECT],
      grant_types: ['authorization_code'],
      response_types: ['code'],
    }]
  : [];

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'hoist',
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    redirect_uris: ['http://127.0.0.1/callback'],
    grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
    response_types: ['code'],
  }, ...webApp],
  jwks: { keys },
  cookies: { keys: ['hoist-test-cookie-key-0123456789'] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
  scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
  async findAccount(ctx, sub) {
    if (!users[sub]) return undefined;
    return { accountId: sub, claims: async () => claimsOf(sub) };
  },
  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // hoist-server is the only API here: every token is for it (a resource indicator is a URI).
      defaultResource: async () => 'urn:hoist:upload-api',
      useGrantedResource: async () => true,
      getResourceServerInfo: async () => ({
        scope: 'upload',
        audience,
        accessTokenTTL,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg } },
      }),
    },
  },
  // The access token carries who the user is, for hoist-server's policies and audit log.
  async extraTokenClaims(ctx, token) {
    if (token.kind !== 'AccessToken' || !users[token.accountId]) return undefined;
    const { email, groups } = claimsOf(token.accountId);
    return { email, groups };
  },
  // A native app keeps its sign-in across restarts: a refresh token whenever the client may
  // use one (the default asks for offline_access with a consent prompt).
  async issueRefreshToken(ctx, client) {
    return client.grantTypeAllowed('refresh_token');
  },
  ttl: { AccessToken: accessTokenTTL, RefreshToken: 14 * 24 * 3600 },
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
