"""orders: a small downstream service whose API is protected by tokensrv.verify."""
