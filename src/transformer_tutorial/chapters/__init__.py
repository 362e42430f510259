"""One module per chapter: the chapter's own sentences, demos and composite figures."""
