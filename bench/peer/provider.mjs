// make bench's peer (bench/run.py, section "peer"): node-oidc-provider issuing what tokensrv's
// client_credentials grant issues, so that the two can be measured under the same wrk load on the
// same core. One confidential client authenticating with client_secret_basic, the client_credentials
// grant only, one scope, access tokens as RS256-signed JWTs (RFC 9068: oidc-provider makes JWT access
// tokens only for a resource server, hence resourceIndicators with a default resource) with the
// TTL and RSA key size bench/run.py read from one of tokensrv's tokens. The in-memory adapter stays
// unused: a JWT access token is issued, not stored. No per-request log line (oidc-provider has none).
//
// PEER_CLIENT_SECRET=S node provider.mjs --port P --client-id ID --scope "read" --ttl 900 --rsa-bits 2048
// (the client secret in the environment: argv is visible to every user through ps)
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    'client-id': { type: 'string' },
    scope: { type: 'string' },
    ttl: { type: 'string' },
    'rsa-bits': { type: 'string' },
  },
});
for (const name of ['port', 'client-id', 'scope', 'ttl', 'rsa-bits']) {
  if (!args[name]) {
    console.error(`provider.mjs: --${name} is required`);
    process.exit(2);
  }
}
const secret = process.env.PEER_CLIENT_SECRET;
if (!secret) {
  console.error('provider.mjs: PEER_CLIENT_SECRET is required');
  process.exit(2);
}

const port = Number(args.port);
const ttl = Number(args.ttl);
const issuer = `http://127.0.0.1:${port}`;
const resource = `${issuer}/api`; // the audience of every access token, as tokensrv's is fixed
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: Number(args['rsa-bits']) });
const key = { ...privateKey.export({ format: 'jwk' }), kid: 'bench', use: 'sig', alg: 'RS256' };

const provider = new Provider(issuer, {
  clients: [{
    client_id: args['client-id'],
    client_secret: secret,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: args.scope,
  }],
  scopes: args.scope.split(' '),
  jwks: { keys: [key] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  // tokensrv's paths: the wrk URL differs only in the port
  routes: { token: '/oauth2/token', jwks: '/.well-known/jwks.json' },
  ttl: { ClientCredentials: ttl },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: args.scope,
        audience: resource,
        accessTokenTTL: ttl,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
});

// bench/procs.py stops it with SIGTERM; exit at once, as tokensrv's workers do
process.on('SIGTERM', () => process.exit(0));
provider.listen(port, '127.0.0.1', () => console.log(`oidc-provider listening on ${issuer}`));
