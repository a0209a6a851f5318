//! The DNS TXT check of a claimed domain, with hickory-resolver: the system's resolver, or
//! `LATCHKEY_DNS_SERVER` when set.
