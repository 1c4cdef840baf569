"""Physical layout models (on-chip passives) used to turn geometry into netlist element values."""
