"""Labels on everything facepair makes: watermark.py (invisible, survives rescales and crops),
label.py (watermark + tag + manifest on write), credentials.py (C2PA), verify.py (reading back)."""
