// The company's web app signing its user in with the company's OpenID provider, as a browser
// app does it: the authorization code flow with PKCE (no client secret in a page), then the
// provider's access token — issued for hoist-server — goes with every request to hoist-server.

const b64url = (bytes) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

async function discover(issuer) {
  const response = await fetch(`${issuer}/.well-known/openid-configuration`);
  if (!response.ok) throw new Error(`the identity provider at ${issuer} did not answer (${response.status})`);
  return response.json();
}

// Sends the browser to the provider's sign-in page; it comes back to this page with a code.
export async function signIn({ issuer, clientId }) {
  const { authorization_endpoint } = await discover(issuer);
  const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
  const state = b64url(crypto.getRandomValues(new Uint8Array(16)));
  const challenge = b64url(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier))));
  sessionStorage.setItem("sign-in", JSON.stringify({ verifier, state, issuer, clientId }));
  const url = new URL(authorization_endpoint);
  for (const [name, value] of Object.entries({
    client_id: clientId, response_type: "code", scope: "openid email groups", state,
    redirect_uri: location.origin + location.pathname, code_challenge: challenge, code_challenge_method: "S256",
  })) url.searchParams.set(name, value);
  location.assign(url);
}

// Back from the provider: trades the code for the access token.
export async function finishSignIn() {
  const params = new URLSearchParams(location.search);
  const pending = JSON.parse(sessionStorage.getItem("sign-in") ?? "null");
  if (!pending || params.get("state") !== pending.state) throw new Error("no sign-in under way, or not this one");
  sessionStorage.removeItem("sign-in");
  if (params.get("error")) throw new Error(`sign-in refused: ${params.get("error_description") ?? params.get("error")}`);
  const { token_endpoint } = await discover(pending.issuer);
  const response = await fetch(token_endpoint, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code", code: params.get("code"), client_id: pending.clientId,
      redirect_uri: location.origin + location.pathname, code_verifier: pending.verifier,
    }),
  });
  const answer = await response.json();
  if (!response.ok) throw new Error(`sign-in failed: ${answer.error_description ?? answer.error}`);
  history.replaceState(null, "", location.pathname);
  return answer.access_token;
}
