"""The papers' experiments as resumable sweeps: definitions (`definitions`), runs and their bookkeeping
(`sweep`), where runs execute (`backends`: serial, process pool, Ray) and reports against the papers (`report`)."""
