// Durations for people: a number of seconds as Prometheus writes durations,
// largest unit first and zero units left out: 86400 → '1d', 43200 → '12h',
// 87300 → '1d15m', 90 → '1m30s', 0 → '0s'. Summaries and descriptions print
// the thresholds with it, so that they say what the `*Seconds` knobs say.
{
  humanDuration(seconds)::
    local units = [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]];
    local render(s, i) =
      if i == std.length(units) then ''
      else
        local n = std.floor(s / units[i][1]);
        (if n > 0 then '%d%s' % [n, units[i][0]] else '') + render(s - n * units[i][1], i + 1);
    assert seconds >= 0 && std.floor(seconds) == seconds : 'humanDuration: %s is not a whole number of seconds' % seconds;
    if seconds == 0 then '0s' else render(seconds, 0),
}
