"""Examples of downstream services using tokensrv.verify, and the local cluster (`make cluster`)."""
