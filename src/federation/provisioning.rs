//! Just-in-time provisioning: the first sign-in through an organization's connection creates the
//! account (its address verified only when the upstream says so and the organization verified the
//! domain) and the membership; the connection's role mapping sets the member's role at every sign-in.
