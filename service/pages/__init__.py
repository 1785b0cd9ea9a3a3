"""The pages a person reads: the front page, /docs, and the drift reports and model
cards they link to, with the live figures the front page shows."""
