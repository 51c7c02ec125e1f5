"""Reconciliation: the channels' daily statement files against paysys's own books.

- `formats.py` parses a statement file (mt940, wechat, alipay) into uniform `Row`s.
- `match.py` compares one file with paysys's rows of that day (pure) and finds the breaks.
- `policy.py` says what becomes of each break (pure).
- `tables.py` owns the tables `recon_files`, `recon_breaks`, `recon_buffer` and reads paysys's
  own rows of a day.
- `flow.py` (the engine side) downloads files, arms timers and resolves breaks with the channels.

Business days are local days in UTC+8 (paysys/days.py, re-exported here for the recon modules).
"""

from paysys.days import DAY_MS, UTC8_MS, day_bounds, day_of, local_date, next_date

__all__ = ["DAY_MS", "UTC8_MS", "day_bounds", "day_of", "local_date", "next_date"]
