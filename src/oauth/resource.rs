//! Resource indicators (RFC 8707): a client names the resource server it wants an access token for
//! with `resource` at the authorization and token endpoints; it may name only resources it
//! registered (`client create --resource URI`), and the access token's `aud` is that resource.
