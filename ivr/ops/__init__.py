"""What ops run: opening hours and holidays, emergency announcements, voicemail."""
