// Latchkey passkeys: runs the WebAuthn ceremony of the form marked `data-passkey` ("create" for a
// registration, "get" for a sign-in) with the options the server put in its `data-options`
// attribute (webauthn-rs JSON: binary fields in base64url), then posts the authenticator's answer,
// as JSON with base64url binary fields, in the form's hidden `credential` input.
// Loaded only by the pages of a ceremony (CSP `script-src 'self'`); no inline script anywhere.
(function () {
  "use strict";

  function fromB64u(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) { b64 += "="; }
    var bin = atob(b64);
    var bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i); }
    return bytes.buffer;
  }

  function toB64u(buffer) {
    var bytes = new Uint8Array(buffer);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) { bin += String.fromCharCode(bytes[i]); }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function decodeIds(list) {
    (list || []).forEach(function (c) { c.id = fromB64u(c.id); });
  }

  function creationOptions(options) {
    var pk = options.publicKey;
    pk.challenge = fromB64u(pk.challenge);
    pk.user.id = fromB64u(pk.user.id);
    decodeIds(pk.excludeCredentials);
    return { publicKey: pk };
  }

  function requestOptions(options) {
    var pk = options.publicKey;
    pk.challenge = fromB64u(pk.challenge);
    decodeIds(pk.allowCredentials);
    return { publicKey: pk };
  }

  function encodeCreated(cred) {
    var ext = cred.getClientExtensionResults ? cred.getClientExtensionResults() : {};
    return {
      id: cred.id,
      rawId: toB64u(cred.rawId),
      type: cred.type,
      response: {
        attestationObject: toB64u(cred.response.attestationObject),
        clientDataJSON: toB64u(cred.response.clientDataJSON)
      },
      extensions: ext && ext.credProps ? { credProps: ext.credProps } : {}
    };
  }

  function encodeAsserted(cred) {
    var r = cred.response;
    return {
      id: cred.id,
      rawId: toB64u(cred.rawId),
      type: cred.type,
      response: {
        authenticatorData: toB64u(r.authenticatorData),
        clientDataJSON: toB64u(r.clientDataJSON),
        signature: toB64u(r.signature),
        userHandle: r.userHandle ? toB64u(r.userHandle) : null
      },
      extensions: {}
    };
  }

  function start(form) {
    var error = form.querySelector("[data-passkey-error]");
    var button = form.querySelector("#passkey-start");
    function fail(message) {
      if (error) { error.textContent = message; error.hidden = false; }
      if (button) { button.disabled = false; }
    }
    if (!window.PublicKeyCredential || !navigator.credentials) {
      fail("This browser cannot use passkeys.");
      return;
    }
    var options;
    try {
      options = JSON.parse(form.getAttribute("data-options"));
    } catch (e) {
      fail("The page is damaged. Reload it and try again.");
      return;
    }
    var create = form.getAttribute("data-passkey") === "create";
    if (button) { button.disabled = true; }
    var ceremony = create
      ? navigator.credentials.create(creationOptions(options))
      : navigator.credentials.get(requestOptions(options));
    ceremony.then(function (cred) {
      if (!cred) { fail("No passkey was chosen."); return; }
      var answer = create ? encodeCreated(cred) : encodeAsserted(cred);
      form.querySelector("input[name=credential]").value = JSON.stringify(answer);
      form.submit();
    }, function (e) {
      var name = e && e.name;
      if (name === "NotAllowedError") {
        fail("The passkey request was cancelled or timed out. Try again.");
      } else if (name === "InvalidStateError") {
        fail("This device already holds a passkey for your account.");
      } else {
        fail("The passkey request failed" + (e && e.message ? ": " + e.message : "."));
      }
    });
  }

  document.querySelectorAll("form[data-passkey]").forEach(function (form) {
    var button = form.querySelector("#passkey-start");
    if (button) {
      button.addEventListener("click", function () {
        start(form);
      });
    }
  });
})();
