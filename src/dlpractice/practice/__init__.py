"""Practice mode: exercise workspaces (`dlp practice`), the checker (`dlp check`), progress (`dlp progress`)
and lab notebooks (`dlp notebook`). See DESIGN.md, "Practice mode"."""
