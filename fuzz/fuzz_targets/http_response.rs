//! The artifact fetcher's HTTP response reader (`stratum::http`, hyper's HTTP/1 client): the
//! input is everything the server sends back, fed through an in-memory duplex stream in place
//! of the socket. The body handed to the sink never exceeds the size bound, the count returned
//! is what the sink got, and the exchange ends once the server has closed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rigworker_fuzz::{bounded, runtime};
use stratum::http::{HttpError, HttpUrl, fetch_over};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Small, so inputs can cross it.
const LIMIT: u64 = 4096;

fuzz_target!(|data: &[u8]| {
    runtime().block_on(async {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        let url =
            HttpUrl::parse("http://pool.example:8080/artifacts/00", "pool.example").expect("url");
        let respond = async move {
            let _ = server.write_all(data).await;
            let _ = server.shutdown().await;
            // Take the request (and anything after it) until the client is gone.
            let mut buf = [0u8; 4096];
            while server.read(&mut buf).await.is_ok_and(|n| n > 0) {}
        };
        let mut got = 0u64;
        let mut sink = |b: &[u8]| {
            got += b.len() as u64;
            Ok(())
        };
        let fetch = fetch_over(client, &url, LIMIT, &mut sink);
        let (r, ()) = bounded("the fetch after the server closed", async {
            tokio::join!(fetch, respond)
        })
        .await;
        match r {
            Ok(n) => assert!(n <= LIMIT && n == got, "{n} bytes, sink got {got}"),
            Err(HttpError::TooLarge { .. }) => assert!(got <= LIMIT),
            Err(_) => {}
        }
    });
});
