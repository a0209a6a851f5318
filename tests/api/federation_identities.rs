//! The linked identities page (`/account/identities`): lists the upstream identities of the
//! signed-in account and removes one, never the last way to sign in.
