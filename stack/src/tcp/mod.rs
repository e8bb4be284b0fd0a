//! Sans-IO TCP (RFC 9293).
