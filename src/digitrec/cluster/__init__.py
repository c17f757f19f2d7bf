"""Past one machine on Ray: connecting (`connect`), batch reading (`batch`), many training runs (`sweeps`)."""
