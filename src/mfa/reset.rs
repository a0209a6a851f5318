//! The operator's reset of a user's second factors (`latchkey user mfa-reset`, `DELETE
//! /api/v1/users/{id}/mfa`): every factor removed, every session ended, the owner mailed, audited.
