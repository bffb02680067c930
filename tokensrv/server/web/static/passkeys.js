// Passkeys (WebAuthn) on tokensrv's own pages: the login page and
// the two-step page ("Use a passkey"), and the account page (add one; confirm a removal with one).
// Ours, small, served from our origin under the pages' CSP (script-src 'self'): no third party.
// Without this script, or without WebAuthn in the browser, the pages work by password as before.
(() => {
  "use strict";

  function toBuffer(text) {
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4);
    return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)).buffer;
  }

  function fromBuffer(buffer) {
    let binary = "";
    for (const byte of new Uint8Array(buffer)) binary += String.fromCharCode(byte);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map((c) => ({ ...c, id: toBuffer(c.id) }));
  }

  function creationOptions(o) {
    return { ...o, challenge: toBuffer(o.challenge), user: { ...o.user, id: toBuffer(o.user.id) },
             excludeCredentials: descriptors(o.excludeCredentials) };
  }

  function requestOptions(o) {
    return { ...o, challenge: toBuffer(o.challenge), allowCredentials: descriptors(o.allowCredentials) };
  }

  // the credential as the WebAuthn JSON encoding (WebAuthn Level 3 §5.1 toJSON), what the server parses
  function credentialJSON(credential) {
    const r = credential.response;
    const response = { clientDataJSON: fromBuffer(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = fromBuffer(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = fromBuffer(r.authenticatorData);
      response.signature = fromBuffer(r.signature);
      if (r.userHandle) response.userHandle = fromBuffer(r.userHandle);
    }
    const out = { id: credential.id, rawId: fromBuffer(credential.rawId), type: credential.type, response,
                  clientExtensionResults: credential.getClientExtensionResults() };
    if (credential.authenticatorAttachment) out.authenticatorAttachment = credential.authenticatorAttachment;
    return out;
  }

  async function post(url, body) {
    const answer = await fetch(url, { method: "POST", credentials: "same-origin",
                                      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    let data = {};
    try { data = await answer.json(); } catch (e) { /* not JSON: the message below */ }
    if (!answer.ok) {
      const text = data.error_description || "The server could not use the passkey.";
      throw new Error(text.charAt(0).toUpperCase() + text.slice(1) + (text.endsWith(".") ? "" : "."));
    }
    return data;
  }

  function explain(error) {
    if (error.name === "NotAllowedError" || error.name === "AbortError") {
      return "The passkey request was cancelled or timed out. Try again, or use your password.";
    }
    if (error.name === "InvalidStateError") return "This device already holds a passkey for your account.";
    if (error.name === "SecurityError") return "Passkeys do not work at this address. Use your password.";
    return error.message || "Something went wrong with the passkey. Try again, or use your password.";
  }

  function say(status, text, failed) {
    status.textContent = text;
    status.classList.toggle("alert", failed);
    status.setAttribute("role", failed ? "alert" : "status");
    status.hidden = !text;
  }

  function field(form, name) {
    const input = form.querySelector(`input[name="${name}"]`);
    return input ? input.value : "";
  }

  // every passkey button runs one ceremony; `status` says what happens, and what to do on failure
  function wire(button, ceremony) {
    const form = button.closest("form");
    const status = document.getElementById(button.getAttribute("aria-controls")) || button;
    button.addEventListener("click", async (event) => {
      event.preventDefault();
      button.disabled = true;
      say(status, "Follow your browser's prompt to use your passkey…", false);
      try {
        await ceremony(form, status);
      } catch (error) {
        say(status, explain(error), true);
      } finally {
        button.disabled = false;
      }
    });
  }

  async function signIn(form) {
    const ids = { request: field(form, "request"), csrf_token: field(form, "csrf_token") };
    const options = await post("/login/passkey/options", ids);
    const credential = await navigator.credentials.get({ publicKey: requestOptions(options) });
    const done = await post("/login/passkey", { ...ids, credential: credentialJSON(credential) });
    window.location.assign(done.location);
  }

  async function register(form, status) {
    const csrf = field(form, "csrf_token");
    const options = await post("/account/passkeys/options", { csrf_token: csrf, purpose: "register" });
    const credential = await navigator.credentials.create({ publicKey: creationOptions(options) });
    const done = await post("/account/passkeys", { csrf_token: csrf, name: field(form, "name"),
                                                   credential: credentialJSON(credential) });
    say(status, `Passkey "${done.name}" added.`, false);
    window.location.assign(done.location);
  }

  async function confirmThenSubmit(form) {
    const options = await post("/account/passkeys/options", { csrf_token: field(form, "csrf_token"),
                                                              purpose: "confirm" });
    const credential = await navigator.credentials.get({ publicKey: requestOptions(options) });
    form.querySelector('input[name="assertion"]').value = JSON.stringify(credentialJSON(credential));
    form.submit();
  }

  const ceremonies = { signin: signIn, register: register, confirm: confirmThenSubmit };
  const buttons = document.querySelectorAll("[data-passkey]");
  const supported = window.PublicKeyCredential !== undefined && navigator.credentials !== undefined;
  for (const button of buttons) {
    const ceremony = ceremonies[button.dataset.passkey];
    if (!ceremony) continue;
    if (!supported) continue;
    button.hidden = false;
    wire(button, ceremony);
    const form = button.closest("form");
    if (form && button.dataset.passkey === "register") {  // Enter in the name field adds, never posts
      form.hidden = false;
      form.addEventListener("submit", (event) => { event.preventDefault(); button.click(); });
    }
  }
  for (const note of document.querySelectorAll("[data-passkey-unsupported]")) note.hidden = supported;
  for (const or of document.querySelectorAll("[data-passkey-or]")) or.hidden = !supported;
})();
