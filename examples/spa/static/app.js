// The example SPA: oidc-client-ts against tokensrv on another origin. config.json (written by
// `python -m examples.spa`) names the issuer and the client.
"use strict";

const $ = (id) => document.getElementById(id);
let manager;
let renewals = 0;

function say(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

function show(user) {
  const signedIn = !!user && !user.expired;
  $("profile").textContent = signedIn ? JSON.stringify(user.profile, null, 2) : "—";
  $("expires").textContent = signedIn ? new Date(user.expires_at * 1000).toISOString() : "—";
  $("refresh").textContent = signedIn && user.refresh_token ? "held (" + user.refresh_token.length + " characters)" : "—";
  $("sign-in").disabled = signedIn;
  for (const id of ["userinfo", "renew", "revoke", "sign-out"]) $(id).disabled = !signedIn;
}

async function callUserInfo() {
  const user = await manager.getUser();
  const metadata = await manager.metadataService.getMetadata();
  const response = await fetch(metadata.userinfo_endpoint, {
    headers: { Authorization: "Bearer " + user.access_token },
  });
  const body = await response.json();
  $("userinfo-result").textContent = JSON.stringify(body, null, 2);
  say(response.ok ? "UserInfo answered." : "UserInfo refused: " + (body.error || response.status), !response.ok);
}

async function renew() {
  const user = await manager.signinSilent();  // with a refresh token: the refresh_token grant, no iframe
  renewals += 1;
  $("renewals").textContent = String(renewals);
  show(user);
  say("Tokens renewed.");
}

async function revoke() {
  await manager.revokeTokens(["access_token", "refresh_token"]);
  show(await manager.getUser());
  say("Tokens revoked.");
}

async function start() {
  const config = await (await fetch("/config.json")).json();
  const here = window.location.origin + "/";
  manager = new oidc.UserManager({
    authority: config.issuer,
    client_id: config.client_id,
    redirect_uri: here,
    post_logout_redirect_uri: here,
    scope: config.scope,
    automaticSilentRenew: false,
    userStore: new oidc.WebStorageStateStore({ store: window.sessionStorage }),
  });
  const params = new URLSearchParams(window.location.search);
  if (params.has("code") || params.has("error")) {
    await manager.signinRedirectCallback();
    window.history.replaceState({}, "", "/");
    say("Signed in.");
  } else if (params.has("state")) {
    await manager.signoutRedirectCallback();
    window.history.replaceState({}, "", "/");
    say("Signed out.");
  } else {
    say("Ready.");
  }
  show(await manager.getUser());
}

function guarded(action) {
  return () => action().catch((error) => say("Failed: " + error.message, true));
}

$("sign-in").addEventListener("click", guarded(() => manager.signinRedirect()));
$("userinfo").addEventListener("click", guarded(callUserInfo));
$("renew").addEventListener("click", guarded(renew));
$("revoke").addEventListener("click", guarded(revoke));
// with state data, the end-session endpoint sends a state back, which signoutRedirectCallback checks
$("sign-out").addEventListener("click", guarded(() => manager.signoutRedirect({ state: "signed-out" })));
guarded(start)();
