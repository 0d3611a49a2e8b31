//! Integration tests of the notifier on real parts: a tansu broker, redis-server, an HTTP
//! receiver and an SMTP listener started by each test. One binary, so it links once.

mod cluster;
mod crash;
mod email;
mod sigterm;
mod support;
mod webhooks;
