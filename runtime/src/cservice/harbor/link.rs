//! One other harbor as this harbor sees it (services.md §2.4). Messages for it wait
//! until a link is up, go out as frames while it is, and bounce once it went down.

use super::frame::{Outgoing, Reader};

pub enum Link {
    /// No link yet: messages wait for one.
    Wait(Vec<Outgoing>),
    /// We connected and sent our id (`S`); messages wait for the peer's id.
    Handshake { socket: i32, queue: Vec<Outgoing> },
    /// Both ids exchanged: frames flow both ways.
    Up { socket: i32, reader: Reader },
    /// The link dropped, failed its handshake, or this node is harbor 0.
    Down,
}

impl Link {
    /// The socket the link runs on, if it has one.
    pub fn socket(&self) -> Option<i32> {
        match self {
            Link::Handshake { socket, .. } | Link::Up { socket, .. } => Some(*socket),
            Link::Wait(_) | Link::Down => None,
        }
    }

    /// Takes the messages waiting for the link, leaving it `Down`.
    pub fn take_down(&mut self) -> Vec<Outgoing> {
        match std::mem::replace(self, Link::Down) {
            Link::Wait(queue) | Link::Handshake { queue, .. } => queue,
            Link::Up { .. } | Link::Down => Vec::new(),
        }
    }
}
