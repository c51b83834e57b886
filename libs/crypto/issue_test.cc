// Placeholder: filled in by the foundation issue's crypto work.
