"""Who is calling: PIN, one-time codes and card checks, the lockout, SMS, secrets."""
