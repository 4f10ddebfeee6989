//! Delivery: the scheduler that sends due steps, the transports it sends through (SMTP or the
//! file sink), and the relay that records nurture's e-mail activities in capture.

pub mod mailer;
pub mod relay;
pub mod scheduler;
