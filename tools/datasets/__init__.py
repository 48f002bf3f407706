"""Data-set preparation: archive checks and extraction (:mod:`.archives`), Pascal VOC
(:mod:`.voc`), ADE20K (:mod:`.ade20k`) and the proxy transfer data. Repo-only: the library
never imports this package."""
